// TargetPicker: where a run goes. The pipeline's own target (null), "auto" (the cheapest offer of any
// ready provider that fits the constraints), or one provider from GET /api/v1/targets; a provider that
// is not usable is listed disabled with the reason (the names of the missing credentials, never values).

import { api, type Target } from "../api";
import { Problems, useLoad } from "../components";
import ParamForm from "./ParamForm";
import type { JsonSchema } from "./schema";
import "./forms.css";

/** A launch's target, as LaunchRequest takes it: `{provider, options}`. */
export interface TargetValue {
  provider: string;
  options?: Record<string, unknown>;
}

export interface TargetPickerProps {
  /** null: the pipeline's own target (its spec's `target`, else local). */
  value: TargetValue | null;
  onChange: (value: TargetValue | null) => void;
  idPrefix?: string;
  disabled?: boolean;
}

/** Why a provider cannot be chosen now, in words. */
export function whyNot(t: Target): string {
  if (t.available) return "";
  if (!t.installed) return t.reason ?? "not installed";
  if (t.missing.length) return `missing ${t.missing.join(", ")}`;
  return t.reason ?? "not ready";
}

/** The constraints `auto` (or any provider) understands (providers/constraints.py), as a form schema. */
export function constraintsSchema(providers: string[]): JsonSchema {
  return {
    type: "object",
    properties: {
      gpu_type: { type: "string", title: "GPU type", description: "A GPU model such as A100 or L4 (A100 matches A100-80GB)." },
      gpu_count: { type: "integer", title: "GPUs", minimum: 0, maximum: 64, description: "At least this many GPUs." },
      min_gpu_memory: { type: "string", title: "Memory per GPU", description: "At least this much, e.g. 40Gi." },
      min_memory: { type: "string", title: "Memory", description: "At least this much, e.g. 16Gi." },
      min_vcpus: { type: "number", title: "vCPUs", exclusiveMinimum: 0, description: "At least this many." },
      max_price_per_hour: { type: "number", title: "Max price per hour (USD)", minimum: 0 },
      regions: { type: "array", title: "Regions", description: "Only offers in these regions.", items: { type: "string" } },
      providers: {
        type: "array",
        title: "Only these providers",
        uniqueItems: true,
        items: { type: "string", enum: providers },
      },
    },
  };
}

const AUTO = "auto";
const DEFAULT = "";

export default function TargetPicker({ value, onChange, idPrefix = "target", disabled }: TargetPickerProps) {
  const targets = useLoad(() => api.get<Target[]>("/api/v1/targets"), []);
  const list = targets.data ?? [];
  const chosen = value?.provider ?? DEFAULT;
  const unusable = list.filter((t) => !t.available);
  const current = list.find((t) => t.provider === chosen);
  return (
    <div className="target-picker" role="group" aria-label="Target">
      <label htmlFor={`${idPrefix}-provider`} className="pf-label">Target</label>{" "}
      <select
        id={`${idPrefix}-provider`}
        className="pf-input"
        disabled={disabled || targets.loading}
        value={chosen}
        onChange={(e) => onChange(e.target.value === DEFAULT ? null : { provider: e.target.value, options: {} })}
        aria-describedby={unusable.length ? `${idPrefix}-why` : undefined}
      >
        <option value={DEFAULT}>the pipeline's own target</option>
        <option value={AUTO}>auto: the cheapest offer that fits</option>
        {list.map((t) => (
          <option key={t.provider} value={t.provider} disabled={!t.available}>
            {t.available ? t.provider : `${t.provider} (unavailable: ${whyNot(t)})`}
          </option>
        ))}
      </select>
      <Problems error={targets.error} />
      {current && !current.available && <p className="field-problem" role="alert">{current.provider} cannot be used now: {whyNot(current)}</p>}
      {unusable.length > 0 && (
        <ul id={`${idPrefix}-why`} className="disabled-reason">
          {unusable.map((t) => <li key={t.provider} data-provider={t.provider}>{t.provider}: {whyNot(t)}</li>)}
        </ul>
      )}
      {value && (
        <details className="target-constraints" open={value.provider === AUTO}>
          <summary>{value.provider === AUTO ? "Constraints" : "Constraints (optional)"}</summary>
          <ParamForm
            schema={constraintsSchema(list.filter((t) => t.installed).map((t) => t.provider))}
            value={value.options ?? {}}
            onChange={(options) => onChange({ ...value, options })}
            idPrefix={`${idPrefix}-c`}
            disabled={disabled}
            label="Target constraints"
          />
        </details>
      )}
    </div>
  );
}
