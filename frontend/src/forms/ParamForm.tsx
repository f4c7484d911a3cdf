// The parameter form generated from a JSON Schema (a playbook's or a pipeline's `parameters`).
// Shared by the builder's side panel, the launch dialog and the playbook editor's preview.

/** A JSON Schema node, as the catalogue's specs carry them (`parameters` is one of type object). */
export type JsonSchema = Record<string, unknown>;

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
}

/** Placeholder: one text field per top-level property. Replaced by the generated form. */
export default function ParamForm({ schema, value, onChange, problems = {}, idPrefix = "p", disabled }: ParamFormProps) {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  return (
    <div className="param-form">
      {Object.entries(props).map(([name, s]) => (
        <label key={name} htmlFor={`${idPrefix}-${name}`}>
          {name}
          <input
            id={`${idPrefix}-${name}`}
            disabled={disabled}
            value={value[name] === undefined ? "" : String(value[name])}
            placeholder={s.default === undefined ? "" : String(s.default)}
            onChange={(e) => onChange({ ...value, [name]: e.target.value })}
          />
          {problems[name] && <span className="field-problem" role="alert">{problems[name]}</span>}
        </label>
      ))}
    </div>
  );
}
