// ParamForm's implementation (loaded on demand: rjsf stays out of the main bundle).
// Built with @rjsf/core 6: enums are selects, bounds are the inputs' min/max, booleans checkboxes, arrays
// add/remove items, nested objects fieldsets, `title`/`description` label and help, defaults shown (and
// left out of the value: an untouched field means "the default"). Validation runs in the browser with a
// CSP-safe validator (validator.ts); the server stays the judge and its problems land on their fields.

import { useMemo } from "react";
import Form, { type IChangeEvent } from "@rjsf/core";
import type { ErrorSchema, RJSFSchema, UiSchema } from "@rjsf/utils";
import { isSecret, normalise, placeProblems, type JsonSchema } from "./schema";
import { templates, widgets, type FormContext } from "./templates";
import { cspSafeValidator } from "./validator";
import "./forms.css";

import type { ParamFormProps } from "./ParamForm";

type Ui = Record<string, unknown>;

/** uiSchema: secret fields get the secret picker (or a password input when no secrets are offered);
 * simple fields show their default as placeholder. */
function uiFor(schema: JsonSchema, withSecrets: boolean): Ui {
  const ui: Ui = {};
  if (isSecret(schema)) ui["ui:widget"] = withSecrets ? "secret" : "password";
  else if (schema.default !== undefined && typeof schema.default !== "object") ui["ui:placeholder"] = String(schema.default);
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  if (props && typeof props === "object") for (const [k, s] of Object.entries(props)) ui[k] = uiFor(s, withSecrets);
  if (schema.items && typeof schema.items === "object" && !Array.isArray(schema.items))
    ui.items = uiFor(schema.items as JsonSchema, withSecrets);
  return ui;
}

/** The generated form. Re-rendering it with the value it just gave keeps the focus and the caret. */
export default function GeneratedForm({
  schema,
  value,
  onChange,
  bindings,
  secrets,
  problems = {},
  idPrefix = "p",
  disabled,
  label = "Parameters",
}: ParamFormProps) {
  const schemaKey = JSON.stringify(schema);
  const normalised = useMemo(() => normalise(schema), [schemaKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const uiSchema = useMemo(() => uiFor(normalised, secrets !== undefined), [normalised, secrets !== undefined]);
  const ctxKey = JSON.stringify([bindings ?? null, secrets ?? null]);
  const problemsKey = JSON.stringify(problems);
  const context: FormContext = useMemo(() => ({ bindings, secrets, problems }), [ctxKey, problemsKey]); // eslint-disable-line react-hooks/exhaustive-deps
  const valueShape = JSON.stringify(arrayLengths(value));
  const placed = useMemo(
    () => placeProblems(normalised, problems, value),
    [normalised, problemsKey, valueShape], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const hasFields = Object.keys((normalised.properties as object | undefined) ?? {}).length > 0;
  return (
    <div className="param-form" role="group" aria-label={label}>
      {placed.elsewhere.length > 0 && (
        <div className="problems" role="alert" data-testid="form-problems">
          {placed.elsewhere.map(([path, message]) => (
            <div className="problem" key={path}>
              <strong>{path}</strong>: {message}
            </div>
          ))}
        </div>
      )}
      {!hasFields && <p className="muted">No parameters.</p>}
      {hasFields && (
        <Form
          tagName="div"
          schema={normalised as RJSFSchema}
          uiSchema={uiSchema as UiSchema}
          formData={value}
          validator={cspSafeValidator}
          templates={templates}
          widgets={widgets}
          formContext={context}
          idPrefix={idPrefix}
          idSeparator="_"
          extraErrors={placed.errors as ErrorSchema}
          showErrorList={false}
          liveValidate="onChange"
          noHtml5Validate
          disabled={disabled}
          experimental_defaultFormStateBehavior={{ emptyObjectFields: "skipDefaults" }}
          onChange={(e: IChangeEvent) => {
            const next = (e.formData ?? {}) as Record<string, unknown>;
            if (JSON.stringify(next) !== JSON.stringify(value)) onChange(next); // only real edits
          }}
        />
      )}
    </div>
  );
}

/** The lengths of the arrays in a value (where a problem on "grid.3" can be shown depends on them). */
function arrayLengths(v: unknown): unknown {
  if (Array.isArray(v)) return v.length;
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, arrayLengths(x)]));
  return 0;
}
