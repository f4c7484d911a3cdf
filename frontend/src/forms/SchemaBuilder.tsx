// SchemaBuilder: edit a parameter schema (JSON Schema of an object) as a table of parameters, without
// writing JSON Schema. Used for a pipeline's `parameters` (PipelineParams) and a playbook's (the playbook
// editor). Keywords it does not edit (title, pattern, nested schemas...) are kept as they are.

import { useState, type KeyboardEvent } from "react";
import type { JsonSchema } from "./schema";
import { NAME_RE, PARAM_TYPES, parseDefault, retype, typeOf, type ParamType } from "./schemaEdit";

export { NAME_RE } from "./schemaEdit";
import "./forms.css";

export interface SchemaBuilderProps {
  /** The parameter schema: `{type: "object", properties: {...}, required: [...]}`. */
  schema: JsonSchema;
  /** Called with the whole new schema on every change. */
  onChange: (schema: JsonSchema) => void;
  /** Prefix of the inputs' DOM ids (unique per builder on a page). */
  idPrefix?: string;
  disabled?: boolean;
}

type Props = Record<string, JsonSchema>;

/** A name edited in place, applied on Enter or when the field is left (never half-typed). */
export function NameInput({
  id,
  value,
  taken,
  onRename,
  label,
  disabled,
}: {
  id: string;
  value: string;
  taken: string[];
  onRename: (name: string) => void;
  label: string;
  disabled?: boolean;
}) {
  const [draft, setDraft] = useState(value);
  const [prev, setPrev] = useState(value);
  if (value !== prev) {
    setPrev(value);
    setDraft(value);
  }
  const error =
    draft === value ? "" : !NAME_RE.test(draft) ? "letters, digits and _; not starting with a digit" : taken.includes(draft) ? "already used" : "";
  const commit = () => {
    if (draft !== value && !error) onRename(draft);
  };
  return (
    <>
      <input
        id={id}
        className="pf-input"
        aria-label={label}
        value={draft}
        disabled={disabled}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e: KeyboardEvent) => e.key === "Enter" && commit()}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}__error` : undefined}
      />
      {error && <div id={`${id}__error`} className="pf-error">{error}</div>}
    </>
  );
}

function DefaultInput({ id, p, onChange, label, disabled }: { id: string; p: JsonSchema; onChange: (v: unknown) => void; label: string; disabled?: boolean }) {
  const type = typeOf(p);
  const [text, setText] = useState(p.default === undefined ? "" : String(p.default));
  const [prev, setPrev] = useState(p.default);
  if (p.default !== prev) {
    // changed from outside (undo, the YAML view): show it, unless it is what the text already says
    setPrev(p.default);
    if (parseDefault(text, p).value !== p.default) setText(p.default === undefined ? "" : String(p.default));
  }
  const error = parseDefault(text, p).error;
  if (type === "boolean")
    return (
      <select id={id} className="pf-input" aria-label={label} disabled={disabled} value={p.default === undefined ? "" : String(p.default)} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value === "true")}>
        <option value="">none</option>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  if (type === "enum")
    return (
      <select id={id} className="pf-input" aria-label={label} disabled={disabled} value={p.default === undefined ? "" : String(p.default)} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}>
        <option value="">none</option>
        {(p.enum as unknown[]).map((v) => <option key={String(v)} value={String(v)}>{String(v)}</option>)}
      </select>
    );
  return (
    <>
      <input
        id={id}
        className="pf-input"
        aria-label={label}
        disabled={disabled}
        inputMode={type === "string" ? undefined : "decimal"}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          const parsed = parseDefault(e.target.value, p);
          if (!parsed.error) onChange(parsed.value);
        }}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}__error` : undefined}
      />
      {error && <div id={`${id}__error`} className="pf-error">{error}</div>}
    </>
  );
}

function Bound({ id, value, onChange, label, disabled }: { id: string; value: unknown; onChange: (v: number | undefined) => void; label: string; disabled?: boolean }) {
  return (
    <input
      id={id}
      type="number"
      className="pf-input pf-small"
      aria-label={label}
      disabled={disabled}
      value={typeof value === "number" ? value : ""}
      onChange={(e) => onChange(e.target.value === "" || !Number.isFinite(Number(e.target.value)) ? undefined : Number(e.target.value))}
    />
  );
}

/** The parameters of a schema as rows: name, type, default, bounds, description, required, remove. */
export default function SchemaBuilder({ schema, onChange, idPrefix = "sb", disabled }: SchemaBuilderProps) {
  const props = (schema.properties && typeof schema.properties === "object" ? schema.properties : {}) as Props;
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  const names = Object.keys(props);
  const emit = (properties: Props, req: string[] = required) => {
    const { required: _r, ...rest } = schema;
    onChange({ type: "object", ...rest, properties, ...(req.length ? { required: req } : {}) });
  };
  const setProp = (name: string, p: JsonSchema) => emit({ ...props, [name]: p });
  const set = (name: string, key: string, v: unknown) => {
    const { [key]: _old, ...rest } = props[name];
    setProp(name, v === undefined || v === "" ? rest : { ...rest, [key]: v });
  };
  const rename = (from: string, to: string) =>
    emit(Object.fromEntries(names.map((n) => [n === from ? to : n, props[n]])), required.map((r) => (r === from ? to : r)));
  const remove = (name: string) =>
    emit(Object.fromEntries(names.filter((n) => n !== name).map((n) => [n, props[n]])), required.filter((r) => r !== name));
  const add = () => {
    let i = names.length + 1;
    while (names.includes(`param_${i}`)) i++;
    emit({ ...props, [`param_${i}`]: { type: "string" } });
  };
  return (
    <div className="schema-builder" role="group" aria-label="Parameter schema">
      {names.length === 0 && <p className="muted">No parameters yet.</p>}
      {names.length > 0 && (
        <table>
          <thead>
            <tr><th>Name</th><th>Type</th><th>Values / default</th><th>Min</th><th>Max</th><th>Description</th><th>Required</th><th><span className="sr-only">Remove</span></th></tr>
          </thead>
          <tbody>
            {names.map((name, i) => {
              const p = props[name];
              const type = typeOf(p);
              const id = `${idPrefix}-${i}`;
              const numeric = type === "integer" || type === "number";
              return (
                <tr key={i} data-param={name}>
                  <td>
                    <NameInput id={`${id}-name`} value={name} taken={names.filter((n) => n !== name)} onRename={(to) => rename(name, to)} label={`name of parameter ${i + 1}`} disabled={disabled} />
                  </td>
                  <td>
                    <select id={`${id}-type`} className="pf-input" aria-label={`type of ${name}`} value={type} disabled={disabled} onChange={(e) => setProp(name, retype(p, e.target.value as ParamType))}>
                      {PARAM_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
                    </select>
                  </td>
                  <td>
                    {type === "enum" && (
                      <input
                        key={name}
                        id={`${id}-enum`}
                        className="pf-input"
                        aria-label={`values of ${name} (comma-separated)`}
                        disabled={disabled}
                        defaultValue={(p.enum as unknown[]).join(", ")}
                        onBlur={(e) => {
                          const values = [...new Set(e.target.value.split(",").map((v) => v.trim()).filter(Boolean))];
                          if (!values.length) return;
                          const { default: d, ...rest } = p;
                          setProp(name, { ...rest, enum: values, ...(values.includes(String(d)) ? { default: d } : {}) });
                        }}
                      />
                    )}
                    <DefaultInput key={`${name}-${type}-${JSON.stringify(p.enum ?? null)}`} id={`${id}-default`} p={p} onChange={(v) => set(name, "default", v)} label={`default of ${name}`} disabled={disabled} />
                  </td>
                  <td>{numeric && <Bound id={`${id}-min`} value={p.minimum} onChange={(v) => set(name, "minimum", v)} label={`minimum of ${name}`} disabled={disabled} />}</td>
                  <td>{numeric && <Bound id={`${id}-max`} value={p.maximum} onChange={(v) => set(name, "maximum", v)} label={`maximum of ${name}`} disabled={disabled} />}</td>
                  <td>
                    <input id={`${id}-description`} className="pf-input" aria-label={`description of ${name}`} disabled={disabled} value={typeof p.description === "string" ? p.description : ""} onChange={(e) => set(name, "description", e.target.value)} />
                  </td>
                  <td>
                    <input type="checkbox" id={`${id}-required`} aria-label={`${name} is required`} disabled={disabled} checked={required.includes(name)} onChange={(e) => emit(props, e.target.checked ? [...required, name] : required.filter((r) => r !== name))} />
                  </td>
                  <td>
                    <button type="button" className="pf-button" aria-label={`remove parameter ${name}`} disabled={disabled} onClick={() => remove(name)}>Remove</button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <button type="button" className="pf-button" onClick={add} disabled={disabled}>+ Add parameter</button>
    </div>
  );
}
