// What the launch dialog sends as `target`, and turning the API's problems into field messages.
import type { Problem, Target } from "../api";
import type { JsonSchema } from "../forms/ParamForm";

/** The auto target's constraints, as typed in the form (empty: not constrained). */
export interface AutoConstraints {
  max_price_per_hour: string;
  gpu_type: string;
  gpu_count: string;
  min_memory: string;
  regions: string;
  providers: string;
}
export const NO_CONSTRAINTS: AutoConstraints = {
  max_price_per_hour: "",
  gpu_type: "",
  gpu_count: "",
  min_memory: "",
  regions: "",
  providers: "",
};

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

/** The launch request's `target`: a provider by name, or auto with the constraints given. Numbers typed
 * as text stay text when they are not numbers: the server says what is wrong with them, and where. */
export function targetOf(provider: string, c: AutoConstraints): { provider: string; options: Record<string, unknown> } {
  if (provider !== "auto") return { provider, options: {} };
  const options: Record<string, unknown> = {};
  const num = (v: string) => (v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v.trim());
  if (c.max_price_per_hour.trim()) options.max_price_per_hour = num(c.max_price_per_hour);
  if (c.gpu_count.trim()) options.gpu_count = num(c.gpu_count);
  if (c.min_memory.trim()) options.min_memory = c.min_memory.trim();
  const gpus = list(c.gpu_type);
  if (gpus.length) options.gpu_type = gpus.length === 1 ? gpus[0] : gpus;
  if (list(c.regions).length) options.regions = list(c.regions);
  if (list(c.providers).length) options.providers = list(c.providers);
  return { provider: "auto", options };
}

/** Why a target cannot launch now (null when it can): missing credentials or tools, by name only. */
export function unavailable(t: Target & { terraform?: boolean | null }): string | null {
  if (t.available) return null;
  if (t.reason) return t.reason;
  const parts = [];
  if (t.missing.length) parts.push(`missing ${t.missing.join(", ")}`);
  if (t.terraform === false) parts.push("terraform (or tofu) is not installed");
  return parts.join("; ") || "not available";
}

/** Parameter values as the schema types them: the text of a number field becomes a number, an empty
 * field is left out (its default applies). Anything else is sent as typed, for the server to check. */
export function typed(schema: JsonSchema, values: Record<string, unknown>): Record<string, unknown> {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === "" || v === undefined) continue;
    const type = props[k]?.type;
    if (typeof v === "string" && (type === "integer" || type === "number") && v.trim() !== "" && Number.isFinite(Number(v))) {
      out[k] = Number(v);
    } else if (typeof v === "string" && type === "boolean" && (v === "true" || v === "false")) {
      out[k] = v === "true";
    } else {
      out[k] = v;
    }
  }
  return out;
}

/** Split the API's problems: those about a parameter go on its field ("grid.C"), the rest are shown
 * above the form. */
export function fieldProblems(problems: Problem[]): { fields: Record<string, string>; other: Problem[] } {
  const fields: Record<string, string> = {};
  const other: Problem[] = [];
  for (const p of problems) {
    const m = /(?:^|> )parameters\.([A-Za-z0-9_.-]+)$/.exec(p.where);
    if (m) fields[m[1]] = fields[m[1]] ? `${fields[m[1]]}; ${p.what}` : `${p.what}${p.fix ? `. Fix: ${p.fix}` : ""}`;
    else other.push(p);
  }
  return { fields, other };
}
