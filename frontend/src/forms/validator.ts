// rjsf's ValidatorType backed by @cfworker/json-schema: an interpreter of JSON Schema that generates no
// code, so it runs under the Content-Security-Policy (`script-src 'self'`: no eval, no new Function) that
// blocks ajv's compiled validators. The server stays the judge; this only gives quick feedback inline.

import { Validator, type OutputUnit, type Schema } from "@cfworker/json-schema";
import {
  createErrorHandler,
  getDefaultFormState,
  toErrorSchema,
  unwrapErrorHandler,
  validationDataMerge,
  type CustomValidator,
  type ErrorTransformer,
  type RJSFSchema,
  type RJSFValidationError,
  type UiSchema,
  type ValidationData,
  type ValidatorType,
} from "@rjsf/utils";
import { isExpression, schemaAt, type JsonSchema } from "./schema";

// Keywords that only say "something below failed": the error below is the one to show.
const WRAPPERS = new Set([
  "properties",
  "items",
  "prefixItems",
  "additionalItems",
  "allOf",
  "patternProperties",
  "dependentSchemas",
  "$ref",
  "if",
  "then",
  "else",
  "unevaluatedItems",
  "contains",
]);

const CACHE_LIMIT = 200;
const cache = new Map<string, Validator>();

function validatorOf(schema: unknown): Validator {
  const key = JSON.stringify(schema);
  let v = cache.get(key);
  if (!v) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    v = new Validator(schema as Schema, "2020-12", false);
    cache.set(key, v);
  }
  return v;
}

const unescape = (s: string) => decodeURIComponent(s).replace(/~1/g, "/").replace(/~0/g, "~");

/** "#/grid/0" → ["grid", "0"] */
function segments(pointer: string): string[] {
  return pointer.replace(/^#\/?/, "").split("/").filter(Boolean).map(unescape);
}

function at(value: unknown, path: string[]): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

const article = (t: string) => (/^[aeiou]/.test(t) ? "an" : "a");

function message(unit: OutputUnit, schema: unknown): string {
  const rule = at(schema, segments(unit.keywordLocation));
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => JSON.stringify(x)).join(", ") : JSON.stringify(v));
  switch (unit.keyword) {
    case "type": {
      const types = Array.isArray(rule) ? rule.map(String) : [String(rule)];
      return `must be ${types.map((t) => `${article(t)} ${t}`).join(" or ")}`;
    }
    case "minimum":
      return `must be ≥ ${String(rule)}`;
    case "maximum":
      return `must be ≤ ${String(rule)}`;
    case "exclusiveMinimum":
      return `must be > ${String(rule)}`;
    case "exclusiveMaximum":
      return `must be < ${String(rule)}`;
    case "enum":
      return `must be one of ${list(rule)}`;
    case "const":
      return `must be ${list(rule)}`;
    case "minLength":
      return `must have at least ${String(rule)} characters`;
    case "maxLength":
      return `must have at most ${String(rule)} characters`;
    case "minItems":
      return `must have at least ${String(rule)} items`;
    case "maxItems":
      return `must have at most ${String(rule)} items`;
    case "pattern":
      return `must match ${String(rule)}`;
    case "required":
      return "is required";
    default:
      return unit.error;
  }
}

/** The errors worth showing: the innermost ones, none about a value that holds an expression (a
 * `${{ params.X }}` binding is checked by the compiler with the bound value) or a null (a nullable field). */
export function toErrors(units: OutputUnit[], formData: unknown, schema: unknown): RJSFValidationError[] {
  const out: RJSFValidationError[] = [];
  const seen = new Set<string>();
  for (const u of units) {
    if (WRAPPERS.has(u.keyword)) continue;
    let path = segments(u.instanceLocation);
    if (u.keyword === "required") {
      const name = /property "(.*)"/.exec(u.error)?.[1];
      if (name === undefined) continue;
      path = [...path, name];
      // a required parameter with a default is given: the compiler fills the default in
      if (schemaAt(schema as JsonSchema, path)?.default !== undefined) continue;
    }
    const value = at(formData, path);
    if (u.keyword !== "required" && (isExpression(value) || value === null)) continue;
    if (path.some((_, i) => isExpression(at(formData, path.slice(0, i))))) continue;
    const property = path.length ? `.${path.join(".")}` : "";
    const text = message(u, schema);
    const key = `${property}\u0000${text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name: u.keyword, property, message: text, stack: `${property || "value"} ${text}`.trim(), schemaPath: u.keywordLocation });
  }
  return out;
}

/** The validator every ParamForm uses (no code generation: allowed by the Content-Security-Policy). */
export const cspSafeValidator: ValidatorType = {
  validateFormData(
    formData: unknown,
    schema: RJSFSchema,
    customValidate?: CustomValidator,
    transformErrors?: ErrorTransformer,
    uiSchema?: UiSchema,
  ): ValidationData<unknown> {
    const raw = this.rawValidation<OutputUnit>(schema, formData);
    let errors = toErrors(raw.errors ?? [], formData, schema);
    if (raw.validationError) errors.push({ stack: raw.validationError.message, message: raw.validationError.message });
    if (transformErrors) errors = transformErrors(errors, uiSchema);
    const errorSchema = toErrorSchema<unknown>(errors);
    if (!customValidate) return { errors, errorSchema };
    const full = getDefaultFormState(this, schema, formData, schema, true);
    const handler = customValidate(full, createErrorHandler(full), uiSchema, errorSchema);
    return validationDataMerge({ errors, errorSchema }, unwrapErrorHandler(handler));
  },
  isValid(schema: RJSFSchema, formData: unknown): boolean {
    try {
      return validatorOf(schema).validate(formData).valid;
    } catch {
      return false;
    }
  },
  rawValidation<Result = unknown>(schema: RJSFSchema, formData?: unknown): { errors?: Result[]; validationError?: Error } {
    try {
      return { errors: validatorOf(schema).validate(formData ?? {}).errors as Result[] };
    } catch (e) {
      return { validationError: e instanceof Error ? e : new Error(String(e)) };
    }
  },
};
