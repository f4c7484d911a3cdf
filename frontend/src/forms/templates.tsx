// rjsf templates and widgets of ParamForm: accessible (aria-invalid, aria-describedby to the field's
// message), with plain-text buttons (no icon font), a binding picker per field and a secret picker.
// Defined once at module level so that their identity never changes: a re-render never remounts an input
// (the caret and the focus stay where they are).

import { useCallback, type ChangeEvent } from "react";
import {
  descriptionId,
  errorId,
  getInputProps,
  type FieldErrorProps,
  type FieldTemplateProps,
  type IconButtonProps,
  type RegistryWidgetsType,
  type TemplatesType,
  type WidgetProps,
} from "@rjsf/utils";
import { binding, paramRef, secretRef } from "./schema";

/** What every field of one form knows (rjsf's formContext). */
export interface FormContext {
  bindings?: string[];
  secrets?: string[];
  /** The server's problems by dotted field path: where one is, it replaces the browser's own messages. */
  problems?: Record<string, string>;
}

const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

function describedBy(id: string, rawErrors: string[] | undefined, hasDescription: boolean): string | undefined {
  const ids = [rawErrors?.length ? errorId(id) : "", hasDescription ? descriptionId(id) : ""].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

function BaseInputTemplate(props: WidgetProps) {
  const { id, htmlName, value, readonly, disabled, autofocus, onBlur, onFocus, onChange, options, schema, rawErrors, type, placeholder } =
    props;
  const inputProps = getInputProps(schema, type, options);
  const shown = inputProps.type === "number" || inputProps.type === "integer" ? (value || value === 0 ? value : "") : (value ?? "");
  const change = useCallback(
    (e: ChangeEvent<HTMLInputElement>) => onChange(e.target.value === "" ? options.emptyValue : e.target.value),
    [onChange, options],
  );
  return (
    <input
      id={id}
      name={htmlName || id}
      className="pf-input"
      readOnly={readonly}
      disabled={disabled}
      autoFocus={autofocus}
      placeholder={placeholder}
      {...inputProps}
      value={shown as string | number}
      onChange={change}
      onBlur={(e) => onBlur(id, e.target.value)}
      onFocus={(e) => onFocus(id, e.target.value)}
      aria-invalid={rawErrors?.length ? true : undefined}
      aria-describedby={describedBy(id, rawErrors, !!schema.description)}
    />
  );
}

function SelectWidget(props: WidgetProps) {
  const { id, htmlName, value, required, disabled, readonly, autofocus, onChange, onBlur, onFocus, options, schema, rawErrors, multiple } = props;
  const choices = options.enumOptions ?? [];
  if (multiple) {
    const chosen = Array.isArray(value) ? value.map((v) => JSON.stringify(v)) : [];
    return (
      <select
        id={id}
        name={htmlName || id}
        multiple
        className="pf-input"
        value={choices.map((o, i) => (chosen.includes(JSON.stringify(o.value)) ? String(i) : "")).filter(Boolean)}
        disabled={disabled || readonly}
        onChange={(e) => onChange(Array.from(e.target.selectedOptions, (o) => choices[Number(o.value)]?.value))}
        onBlur={() => onBlur(id, value)}
        onFocus={() => onFocus(id, value)}
        aria-invalid={rawErrors?.length ? true : undefined}
        aria-describedby={describedBy(id, rawErrors, !!schema.description)}
      >
        {choices.map((o, i) => (
          <option key={i} value={String(i)}>{o.label}</option>
        ))}
      </select>
    );
  }
  const index = choices.findIndex((o) => JSON.stringify(o.value) === JSON.stringify(value));
  const fallback = schema.default !== undefined ? `default: ${show(schema.default)}` : "choose…";
  return (
    <select
      id={id}
      name={htmlName || id}
      className="pf-input"
      value={index >= 0 ? String(index) : ""}
      required={required}
      disabled={disabled || readonly}
      autoFocus={autofocus}
      onChange={(e) => onChange(e.target.value === "" ? undefined : choices[Number(e.target.value)]?.value)}
      onBlur={() => onBlur(id, value)}
      onFocus={() => onFocus(id, value)}
      aria-invalid={rawErrors?.length ? true : undefined}
      aria-describedby={describedBy(id, rawErrors, !!schema.description)}
    >
      <option value="">{`— ${fallback} —`}</option>
      {index < 0 && value !== undefined && value !== "" && <option value="" disabled>{`(not allowed: ${show(value)})`}</option>}
      {choices.map((o, i) => (
        <option key={i} value={String(i)}>{o.label}</option>
      ))}
    </select>
  );
}

function CheckboxWidget(props: WidgetProps) {
  const { id, htmlName, value, disabled, readonly, autofocus, onChange, onBlur, onFocus, label, required, schema, rawErrors } = props;
  const checked = typeof value === "boolean" ? value : schema.default === true;
  return (
    <label className="pf-check">
      <input
        type="checkbox"
        id={id}
        name={htmlName || id}
        checked={checked}
        disabled={disabled || readonly}
        autoFocus={autofocus}
        onChange={(e) => onChange(e.target.checked)}
        onBlur={(e) => onBlur(id, e.target.checked)}
        onFocus={(e) => onFocus(id, e.target.checked)}
        aria-invalid={rawErrors?.length ? true : undefined}
        aria-describedby={describedBy(id, rawErrors, !!schema.description)}
      />
      {label}
      {required && <span className="pf-required" aria-hidden="true"> *</span>}
    </label>
  );
}

/** A secret field: a choice among the secrets' names, stored as `${{ secrets.NAME }}` (never a value). */
function SecretWidget(props: WidgetProps) {
  const { id, value, disabled, readonly, onChange, registry, schema, rawErrors } = props;
  const names = (registry.formContext as FormContext).secrets ?? [];
  const ref = binding(value);
  const current = ref?.namespace === "secrets" ? ref.name : "";
  const literal = value !== undefined && value !== "" && !ref;
  return (
    <select
      id={id}
      className="pf-input pf-secret"
      data-secret-picker
      value={current}
      disabled={disabled || readonly}
      onChange={(e) => onChange(e.target.value ? secretRef(e.target.value) : undefined)}
      aria-invalid={rawErrors?.length ? true : undefined}
      aria-describedby={describedBy(id, rawErrors, !!schema.description)}
    >
      <option value="">{literal ? "— a typed value (hidden): choose a secret —" : "— choose a secret —"}</option>
      {current && !names.includes(current) && <option value={current}>{`${current} (not set)`}</option>}
      {names.map((n) => (
        <option key={n} value={n}>{n}</option>
      ))}
    </select>
  );
}

/** One field: label with a required mark, help, the input (or the binding it holds), its messages. */
function FieldTemplate(props: FieldTemplateProps) {
  const { id, label, children, errors, description, rawDescription, hidden, required, displayLabel, schema, formData, onChange, fieldPathId, registry, disabled, readonly } =
    props;
  if (hidden) return <div className="hidden">{children}</div>;
  const ctx = registry.formContext as FormContext;
  const root = fieldPathId.path.length === 0;
  if (root) return <div className="pf-root">{children}</div>;
  const ref = binding(formData);
  const bound = ref !== null && !(ref.namespace === "secrets" && props.uiSchema?.["ui:widget"] === "secret");
  const composite = schema.type === "object" || schema.type === "array";
  const dotted = fieldPathId.path.join(".");
  const canBind = !!ctx.bindings && !disabled && !readonly;
  const unbind = schema.default;
  return (
    <div className={`pf-field${errors && props.rawErrors?.length ? " pf-invalid" : ""}`} data-field={dotted}>
      {(displayLabel || bound) && (
        <label htmlFor={bound ? `${id}__bind` : id} className="pf-label">
          {label || fieldPathId.path[fieldPathId.path.length - 1]}
          {required && typeof fieldPathId.path[fieldPathId.path.length - 1] !== "number" && (
            <span className="pf-required" aria-hidden="true"> *</span>
          )}
        </label>
      )}
      {(displayLabel || bound || schema.type === "boolean") && !composite && rawDescription ? description : null}
      {bound ? (
        <code className="pf-bound" id={id} data-bound={dotted}>{show(formData)}</code>
      ) : (
        children
      )}
      {canBind && (
        <select
          id={`${id}__bind`}
          className="pf-bind"
          aria-label={`${label || dotted}: value or binding`}
          value={ref?.namespace === "params" ? ref.name : ""}
          onChange={(e) => onChange(e.target.value ? paramRef(e.target.value) : unbind, fieldPathId.path)}
        >
          <option value="">{bound ? "unbind (give a value)" : "a value"}</option>
          {ctx.bindings!.map((b) => (
            <option key={b} value={b}>{`← params.${b}`}</option>
          ))}
        </select>
      )}
      {!composite && schema.default !== undefined && !bound && (
        <div className="pf-default muted">default: {show(schema.default)}</div>
      )}
      {errors}
    </div>
  );
}

function FieldErrorTemplate({ errors = [], fieldPathId, registry }: FieldErrorProps) {
  const server = (registry.formContext as FormContext).problems?.[fieldPathId.path.join(".")];
  const messages = server ? [server] : errors.filter(Boolean);
  if (!messages.length) return null;
  return (
    <div id={errorId(fieldPathId)} className="pf-error field-problem">
      {messages.map((m, i) => (
        <div key={i}>{m}</div>
      ))}
    </div>
  );
}

function TextButton({ label, text }: { label: string; text: string }) {
  return function Button(props: IconButtonProps) {
    const { iconType: _i, icon: _c, className, uiSchema: _u, registry: _r, ...rest } = props;
    return (
      <button type="button" className={`pf-button ${className ?? ""}`} aria-label={label} title={label} {...rest}>
        {text}
      </button>
    );
  };
}

export const templates: Partial<TemplatesType> = {
  BaseInputTemplate,
  FieldTemplate,
  FieldErrorTemplate,
  ButtonTemplates: {
    AddButton: TextButton({ label: "Add item", text: "+ Add item" }),
    RemoveButton: TextButton({ label: "Remove item", text: "Remove" }),
    MoveUpButton: TextButton({ label: "Move up", text: "↑" }),
    MoveDownButton: TextButton({ label: "Move down", text: "↓" }),
    CopyButton: TextButton({ label: "Copy item", text: "Copy" }),
    ClearButton: TextButton({ label: "Clear", text: "×" }),
    SubmitButton: () => null,
  },
};

export const widgets: RegistryWidgetsType = { SelectWidget, CheckboxWidget, secret: SecretWidget };
