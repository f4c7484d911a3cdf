// Where to run: local, a provider of GET /api/v1/targets (one that cannot launch now says why), or auto
// with its constraints (see the constraint options of the platform's placement: cheapest fitting offer).
import type { Target } from "../api";
import { unavailable, type AutoConstraints } from "./target";

export interface TargetChoiceProps {
  targets: Target[];
  provider: string;
  onProvider: (p: string) => void;
  constraints: AutoConstraints;
  onConstraints: (c: AutoConstraints) => void;
}

const FIELDS: { key: keyof AutoConstraints; label: string; placeholder: string; help: string }[] = [
  { key: "max_price_per_hour", label: "Max price per hour (USD)", placeholder: "0.5", help: "only offers at most this price" },
  { key: "gpu_type", label: "GPU type", placeholder: "A100, L4", help: "one model or several, comma-separated" },
  { key: "gpu_count", label: "GPUs", placeholder: "1", help: "at least this many GPUs" },
  { key: "min_memory", label: "Min memory", placeholder: "16Gi", help: "at least this much memory" },
  { key: "regions", label: "Regions", placeholder: "ch-gva-2, eu-west", help: "only offers in these regions" },
  { key: "providers", label: "Providers", placeholder: "local, exoscale", help: "only these providers" },
];

/** A select of the targets, and the auto target's constraints when auto is chosen. */
export default function TargetChoice({ targets, provider, onProvider, constraints, onConstraints }: TargetChoiceProps) {
  const others = targets.filter((t) => t.provider !== "local" && t.installed);
  return (
    <div className="target-choice">
      <label htmlFor="launch-target">Run on</label>{" "}
      <select id="launch-target" value={provider} onChange={(e) => onProvider(e.target.value)}>
        <option value="local">local (this machine)</option>
        {others.map((t) => {
          const why = unavailable(t);
          return (
            <option key={t.provider} value={t.provider}>
              {t.provider}{why ? ` (preview only: ${why})` : ""}
            </option>
          );
        })}
        <option value="auto">auto (cheapest offer that fits the constraints)</option>
      </select>
      {provider === "auto" && (
        <fieldset className="constraints">
          <legend>Constraints</legend>
          {FIELDS.map((f) => (
            <label key={f.key} htmlFor={`launch-c-${f.key}`}>
              {f.label}
              <input
                id={`launch-c-${f.key}`}
                value={constraints[f.key]}
                placeholder={f.placeholder}
                maxLength={200}
                title={f.help}
                onChange={(e) => onConstraints({ ...constraints, [f.key]: e.target.value })}
              />
            </label>
          ))}
        </fieldset>
      )}
    </div>
  );
}
