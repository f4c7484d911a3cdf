// Pure helpers of the parameter forms: schema normalisation, bindings, secrets, and where a located
// problem of the gateway lands in a form. No React here.

import type { Problem } from "../api";

/** A JSON Schema node, as the catalogue's specs carry them. */
export type JsonSchema = Record<string, unknown>;

const isObject = (v: unknown): v is JsonSchema => typeof v === "object" && v !== null && !Array.isArray(v);

const isNull = (s: unknown) => isObject(s) && s.type === "null" && Object.keys(s).length === 1;

/** The schema with pydantic's nullable forms (`anyOf: [X, {type: null}]`, `type: [X, "null"]`) made X,
 * at every depth; `nullable: true` records that null is allowed. Returns new objects, never mutates. */
export function normalise(schema: unknown): JsonSchema {
  if (!isObject(schema)) return {};
  let out: JsonSchema = { ...schema };
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = out[key];
    if (Array.isArray(options) && options.length === 2 && options.some(isNull)) {
      const other = options.find((o) => !isNull(o));
      if (isObject(other)) {
        const { [key]: _drop, ...rest } = out;
        out = { ...other, ...rest, nullable: true };
      }
    }
  }
  if (Array.isArray(out.type)) {
    const types = out.type.filter((t) => t !== "null");
    if (types.length === 1) out = { ...out, type: types[0], nullable: out.type.includes("null") || undefined };
  }
  if (out.default === null) delete out.default;
  for (const key of ["properties", "patternProperties", "$defs"]) {
    const map = out[key];
    if (isObject(map)) out[key] = Object.fromEntries(Object.entries(map).map(([k, v]) => [k, normalise(v)]));
  }
  for (const key of ["items", "additionalProperties", "not", "if", "then", "else", "contains"]) {
    if (isObject(out[key])) out[key] = normalise(out[key]);
  }
  for (const key of ["anyOf", "oneOf", "allOf", "prefixItems"]) {
    const list = out[key];
    if (Array.isArray(list)) out[key] = list.map(normalise);
  }
  return out;
}

const BINDING = /^\s*\$\{\{\s*(params|secrets)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}\s*$/;

/** `${{ params.X }}` or `${{ secrets.X }}`, as a step's `with:` holds them. */
export function binding(value: unknown): { namespace: "params" | "secrets"; name: string } | null {
  if (typeof value !== "string") return null;
  const m = BINDING.exec(value);
  return m ? { namespace: m[1] as "params" | "secrets", name: m[2] } : null;
}

/** Any value holding an expression (`${{`): the compiler checks it, the form does not. */
export const isExpression = (value: unknown) => typeof value === "string" && value.includes("${{");

export const paramRef = (name: string) => `\${{ params.${name} }}`;
export const secretRef = (name: string) => `\${{ secrets.${name} }}`;

/** A field holding a secret: `writeOnly: true` (pydantic's SecretStr), or `format: "secret"`/`"password"`.
 * Such a field takes a `${{ secrets.X }}` reference, never a value typed into the form. */
export function isSecret(schema: unknown): boolean {
  return isObject(schema) && (schema.writeOnly === true || schema.format === "secret" || schema.format === "password");
}

/** The sub-schema at a dotted path ("grid.0"), or null when the schema has no such field. */
export function schemaAt(schema: JsonSchema, path: string[]): JsonSchema | null {
  let node: JsonSchema = schema;
  for (const seg of path) {
    const props = isObject(node.properties) ? node.properties : {};
    if (isObject(props[seg])) node = props[seg] as JsonSchema;
    else if (/^\d+$/.test(seg) && isObject(node.items)) node = node.items;
    else if (/^\d+$/.test(seg) && Array.isArray(node.prefixItems) && isObject(node.prefixItems[Number(seg)]))
      node = node.prefixItems[Number(seg)] as JsonSchema;
    else if (isObject(node.additionalProperties)) node = node.additionalProperties;
    else return null;
  }
  return node;
}

/** The located problems of an API answer that concern a parameter form, as dotted field paths.
 *
 * `anchor` is the text after which the field path starts in a problem's `where`: "parameters" for a
 * launch's parameters (`pipeline/x > parameters.grid[0]` → "grid.0"), "with" for a step's values
 * (`pipeline/x > steps[1] (train) > with.C` → "C"). A problem at the anchor itself (no field) or one
 * elsewhere goes to `rest`, to be shown above the form. */
export function fieldProblems(problems: Problem[], anchor = "parameters"): { fields: Record<string, string>; rest: Problem[] } {
  const fields: Record<string, string> = {};
  const rest: Problem[] = [];
  for (const p of problems) {
    const last = p.where.split(" > ").pop() ?? "";
    const tail = last.startsWith(anchor) ? last.slice(anchor.length) : "";
    const path = tail.startsWith(".") || tail.startsWith("[") ? toDotted(tail) : "";
    if (!path) {
      rest.push(p);
      continue;
    }
    const message = p.fix ? `${p.what}. Fix: ${p.fix}` : p.what;
    fields[path] = fields[path] ? `${fields[path]}; ${message}` : message;
  }
  return { fields, rest };
}

/** ".grid[0].C" → "grid.0.C" */
export function toDotted(tail: string): string {
  return tail
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .filter(Boolean)
    .join(".");
}

/** Problems of fields the form shows as rjsf's extraErrors; the others (unknown field, array item not
 * there) are returned to be shown above the form: a problem is never dropped. */
export function placeProblems(
  schema: JsonSchema,
  problems: Record<string, string>,
  value: Record<string, unknown>,
): { errors: Record<string, unknown>; elsewhere: [string, string][] } {
  const errors: Record<string, unknown> = {};
  const elsewhere: [string, string][] = [];
  for (const [path, message] of Object.entries(problems)) {
    const segs = path.split(".").filter(Boolean);
    let v: unknown = value;
    let shown = segs.length > 0 && schemaAt(schema, segs) !== null;
    for (const seg of segs) {
      if (!shown) break;
      if (/^\d+$/.test(seg)) shown = Array.isArray(v) && Number(seg) < v.length;
      v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[seg] : undefined;
    }
    if (!shown) {
      elsewhere.push([path, message]);
      continue;
    }
    let node = errors;
    for (const seg of segs) node = (node[seg] ??= {}) as Record<string, unknown>;
    node.__errors = [...((node.__errors as string[]) ?? []), message];
  }
  return { errors, elsewhere };
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The problems of one top-level step's `with:` as dotted field paths (the builder's side panel), and the
 * step's other problems (its uses, inputs, what its nested pipeline says...) in `rest`; the problems of
 * the rest of the pipeline in `others`. */
export function stepFieldProblems(
  problems: Problem[],
  stepId: string,
): { fields: Record<string, string>; rest: Problem[]; others: Problem[] } {
  const mine = new RegExp(`^[^>]*> steps\\[\\d+\\] \\(${escape(stepId)}\\)(?= > |$)`);
  const fields: Record<string, string> = {};
  const rest: Problem[] = [];
  const others: Problem[] = [];
  for (const p of problems) {
    const m = mine.exec(p.where);
    if (!m) {
      others.push(p);
      continue;
    }
    const tail = p.where.slice(m[0].length);
    const placed = /^ > with[.[]/.test(tail) && !tail.slice(3).includes(" > ") ? fieldProblems([p], "with").fields : {};
    if (!Object.keys(placed).length) rest.push(p);
    for (const [k, v] of Object.entries(placed)) fields[k] = fields[k] ? `${fields[k]}; ${v}` : v;
  }
  return { fields, rest, others };
}
