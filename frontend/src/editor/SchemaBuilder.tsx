// A minimal parameter-schema builder for the playbook editor: one row per parameter (name, type,
// default, bounds or choices, description, required), producing the JSON Schema of an object. The
// "forms" area's SchemaBuilder replaces it once merged (same idea: schema in, schema out).
import type { JsonSchema } from "../forms/ParamForm";

const TYPES = ["string", "integer", "number", "boolean", "enum"] as const;
type ParamType = (typeof TYPES)[number];

interface Row {
  name: string;
  type: ParamType;
  def: string;
  min: string;
  max: string;
  choices: string;
  description: string;
  required: boolean;
}

function rowsOf(schema: JsonSchema): Row[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const type: ParamType = Array.isArray(s.enum) ? "enum" : ((TYPES as readonly string[]).includes(String(s.type)) ? (s.type as ParamType) : "string");
    return {
      name,
      type,
      def: s.default === undefined ? "" : String(s.default),
      min: s.minimum === undefined ? "" : String(s.minimum),
      max: s.maximum === undefined ? "" : String(s.maximum),
      choices: Array.isArray(s.enum) ? s.enum.join(", ") : "",
      description: String(s.description ?? ""),
      required: required.has(name),
    };
  });
}

function typed(type: ParamType, text: string): unknown {
  if (text === "") return undefined;
  if (type === "integer" || type === "number") {
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
  }
  if (type === "boolean") return text === "true";
  return text;
}

function schemaOf(rows: Row[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const r of rows) {
    const s: JsonSchema = r.type === "enum" ? { type: "string" } : { type: r.type };
    if (r.type === "enum") s.enum = r.choices.split(",").map((c) => c.trim()).filter(Boolean);
    const d = typed(r.type, r.def);
    if (d !== undefined) s.default = d;
    if (r.type === "integer" || r.type === "number") {
      const lo = typed(r.type, r.min);
      const hi = typed(r.type, r.max);
      if (lo !== undefined) s.minimum = lo;
      if (hi !== undefined) s.maximum = hi;
    }
    if (r.description) s.description = r.description;
    properties[r.name] = s;
  }
  const required = rows.filter((r) => r.required && r.name).map((r) => r.name);
  return { type: "object", properties, ...(required.length ? { required } : {}) };
}

export interface SchemaBuilderProps {
  schema: JsonSchema;
  onChange: (schema: JsonSchema) => void;
  /** Field problems by parameter index (e.g. an invalid name). */
  problems?: Record<number, string>;
}

/** Parameters as rows of a form; every edit gives the whole new schema. */
export default function SchemaBuilder({ schema, onChange, problems = {} }: SchemaBuilderProps) {
  const rows = rowsOf(schema);
  const set = (i: number, patch: Partial<Row>) => {
    if (patch.name !== undefined && rows.some((r, j) => j !== i && r.name === patch.name)) return; // one row per name
    onChange(schemaOf(rows.map((r, j) => (j === i ? { ...r, ...patch } : r))));
  };
  const add = () => {
    let n = rows.length + 1;
    while (rows.some((r) => r.name === `param${n}`)) n++;
    onChange(schemaOf([...rows, { name: `param${n}`, type: "string", def: "", min: "", max: "", choices: "", description: "", required: false }]));
  };
  return (
    <div className="schema-builder">
      {rows.map((r, i) => (
        <fieldset key={i} className="param-row" data-testid={`param-${i}`}>
          <legend>Parameter {i + 1}</legend>
          <label>
            Name
            <input value={r.name} aria-invalid={!!problems[i]} onChange={(e) => set(i, { name: e.target.value })} />
          </label>
          <label>
            Type
            <select value={r.type} onChange={(e) => set(i, { type: e.target.value as ParamType })}>
              {TYPES.map((t) => <option key={t} value={t}>{t === "enum" ? "choice" : t}</option>)}
            </select>
          </label>
          <label>
            Default
            {r.type === "boolean" ? (
              <select value={r.def} onChange={(e) => set(i, { def: e.target.value })}>
                <option value="">none</option>
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            ) : (
              <input value={r.def} onChange={(e) => set(i, { def: e.target.value })} />
            )}
          </label>
          {(r.type === "integer" || r.type === "number") && (
            <>
              <label>Minimum<input value={r.min} inputMode="decimal" onChange={(e) => set(i, { min: e.target.value })} /></label>
              <label>Maximum<input value={r.max} inputMode="decimal" onChange={(e) => set(i, { max: e.target.value })} /></label>
            </>
          )}
          {r.type === "enum" && (
            <label>Choices (comma-separated)<input value={r.choices} onChange={(e) => set(i, { choices: e.target.value })} /></label>
          )}
          <label className="wide">Description<input value={r.description} onChange={(e) => set(i, { description: e.target.value })} /></label>
          <label className="check">
            <input type="checkbox" checked={r.required} onChange={(e) => set(i, { required: e.target.checked })} /> required
          </label>
          <button type="button" onClick={() => onChange(schemaOf(rows.filter((_, j) => j !== i)))} aria-label={`Remove parameter ${r.name || i + 1}`}>
            Remove
          </button>
          {problems[i] && <span className="field-problem" role="alert">{problems[i]}</span>}
        </fieldset>
      ))}
      <button type="button" onClick={add}>Add parameter</button>
    </div>
  );
}
