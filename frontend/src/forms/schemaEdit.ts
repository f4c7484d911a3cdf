// Pure helpers of SchemaBuilder: the type a parameter is edited as, changing it, typed defaults.

import type { JsonSchema } from "./schema";

export type ParamType = "string" | "integer" | "number" | "boolean" | "enum";
export const PARAM_TYPES: ParamType[] = ["string", "integer", "number", "boolean", "enum"];

/** Names a parameter (or an output) may have: what `${{ params.NAME }}` accepts. */
export const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The type a property is edited as. */
export function typeOf(p: JsonSchema): ParamType {
  if (Array.isArray(p.enum)) return "enum";
  return PARAM_TYPES.includes(p.type as ParamType) ? (p.type as ParamType) : "string";
}

/** The property with another type: bounds and a default that no longer fit are dropped. */
export function retype(p: JsonSchema, type: ParamType): JsonSchema {
  const { enum: _e, minimum: _min, maximum: _max, default: _d, ...rest } = p;
  const numeric = type === "integer" || type === "number";
  const out: JsonSchema = { ...rest, type: type === "enum" ? "string" : type };
  if (type === "enum") out.enum = Array.isArray(p.enum) ? p.enum : ["a", "b"];
  if (numeric && typeof p.minimum === "number") out.minimum = p.minimum;
  if (numeric && typeof p.maximum === "number") out.maximum = p.maximum;
  return out;
}

/** A default typed in a form, as the value of the type (undefined: no default; an error message). */
export function parseDefault(text: string, p: JsonSchema): { value?: unknown; error?: string } {
  if (text === "") return {};
  const type = typeOf(p);
  if (type === "integer" || type === "number") {
    const n = Number(text);
    if (!Number.isFinite(n) || (type === "integer" && !Number.isInteger(n))) return { error: `not ${type === "integer" ? "an integer" : "a number"}` };
    return { value: n };
  }
  if (type === "enum" && Array.isArray(p.enum) && !p.enum.map(String).includes(text)) return { error: "not one of the values" };
  return { value: text };
}
