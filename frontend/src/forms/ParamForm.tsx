// The parameter form generated from a JSON Schema (a playbook's or a pipeline's `parameters`).
// Shared by the builder's side panel, the launch dialog and the playbook editor's preview.
// The form itself (GeneratedForm: @rjsf/core with a CSP-safe validator) is loaded on first use.
//
// The `problems` prop from the gateway's located problems (schema.ts):
//   a launch's parameters:   fieldProblems(apiError.problems, "parameters")  → {fields, rest}
//   one step's `with:`:      stepFieldProblems(apiError.problems, stepId)    → {fields, rest, others}
// pass `fields` as `problems`; show `rest` (problems of no field) with <Problems>. A field path the form
// does not show (an unknown parameter) is shown above the form by ParamForm itself.
// Secret fields: `writeOnly: true` or `format: "secret"`/`"password"` in the schema (the compiler refuses a
// literal value for them in a step's `with:`).

import { lazy, Suspense } from "react";
import type { JsonSchema } from "./schema";

export type { JsonSchema } from "./schema";

const GeneratedForm = lazy(() => import("./GeneratedForm"));

export interface ParamFormProps {
  /** JSON Schema of an object: the playbook's or pipeline's `parameters`. */
  schema: JsonSchema;
  /** Current values; a value may be a binding string such as "${{ params.lr }}". */
  value: Record<string, unknown>;
  /** Called with the whole new value on every edit (typing in a field is not a graph change). */
  onChange: (value: Record<string, unknown>) => void;
  /** Pipeline parameter names a field may bind to (`${{ params.X }}`); absent: no binding picker. */
  bindings?: string[];
  /** Secret names offered by secret pickers (`${{ secrets.X }}`); absent: no secret picker. */
  secrets?: string[];
  /** Problems to show on fields: a dotted field path ("estimator", "grid.C") → message. */
  problems?: Record<string, string>;
  /** Prefix of the fields' DOM ids (unique per form on a page). */
  idPrefix?: string;
  disabled?: boolean;
  /** Accessible name of the form (default "Parameters"). */
  label?: string;
}

/** Enums as selects, bounds, booleans as checkboxes, arrays, nested objects, defaults shown, `title` and
 * `description` as label and help, required marks; a field may be bound to a pipeline parameter or,
 * when its schema marks it secret (`writeOnly: true` or `format: "secret"`/`"password"`), pick a secret.
 * Each problem shows on its field (aria-invalid, aria-describedby); one for no field shows above. */
export default function ParamForm(props: ParamFormProps) {
  return (
    <Suspense fallback={<p className="muted">Loading the form…</p>}>
      <GeneratedForm {...props} />
    </Suspense>
  );
}
