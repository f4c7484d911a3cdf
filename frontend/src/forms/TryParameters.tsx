// "Try parameters" on a catalogue entry's page: fill the generated form and let the gateway check the
// values (POST /api/v1/validate) before launching or using the entry; its problems land on their fields.
//   - a pipeline or meta-pipeline: its own parameters, checked as a launch would check them;
//   - a playbook: the `with:` of a step using it, checked inside a one-step pipeline (secrets offered);
//   - a step of a pipeline (TryStep): that step's `with:`, with bindings to the pipeline's parameters.

import { useMemo, useState } from "react";
import { parse } from "yaml";
import { api, ApiError, type Problem } from "../api";
import { Problems, useLoad } from "../components";
import ParamForm from "./ParamForm";
import TargetPicker, { type TargetValue } from "./TargetPicker";
import { fieldProblems, stepFieldProblems, type JsonSchema } from "./schema";

interface Valid {
  status: string;
  steps: number;
  warnings: Problem[];
}

type Outcome = { valid: Valid } | { fields: Record<string, string>; rest: Problem[] } | { error: unknown } | null;

/** The names of the secrets set on the gateway (never their values): what secret pickers offer. */
export function useSecretNames(): string[] | undefined {
  return useLoad(() => api.get<{ name: string }[]>("/api/v1/secrets"), []).data?.map((s) => s.name);
}

type Split = (problems: Problem[]) => { fields: Record<string, string>; rest: Problem[] };

async function check(body: unknown, split: Split): Promise<Outcome> {
  try {
    return { valid: await api.post<Valid>("/api/v1/validate", body) };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 422) return { error: e };
    return split(e.problems);
  }
}

function Result({ outcome }: { outcome: Outcome }) {
  if (!outcome) return null;
  if ("error" in outcome) return <Problems error={outcome.error} />;
  if ("valid" in outcome)
    return (
      <p className="ok" role="status" data-testid="try-valid">
        Valid: {outcome.valid.steps} steps would run.
        {outcome.valid.warnings.map((w, i) => <span key={i} className="muted"> Warning: {w.what} ({w.where})</span>)}
      </p>
    );
  return (
    <>
      <p role="status" className="field-problem">The gateway found problems: see the marked fields.</p>
      {outcome.rest.length > 0 && <Problems error={new ApiError(422, outcome.rest)} />}
    </>
  );
}

interface TryProps {
  kind: string;
  name: string;
  version: string;
  /** The entry's parsed document (its `spec.parameters`, `spec.inputs`). */
  spec: { parameters?: JsonSchema; inputs?: Record<string, unknown> };
}

/** The entry page's "Try parameters" section. */
export function TryParameters({ kind, name, version, spec }: TryProps) {
  const [value, setValue] = useState<Record<string, unknown>>({});
  const [outcome, setOutcome] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const [target, setTarget] = useState<TargetValue | null>(null);
  const secrets = useSecretNames();
  const playbook = kind === "playbook";
  const ref = `${kind}/${name}@${version}`;
  const run = async () => {
    setBusy(true);
    const body = playbook
      ? {
          pipeline: {
            apiVersion: "mlops-nocode/v1",
            kind: "Pipeline",
            metadata: { name: `try-${name}`.slice(0, 63), version: "0.0.0" },
            spec: {
              inputs: spec.inputs ?? {},
              steps: [
                {
                  id: "try",
                  uses: ref,
                  with: value,
                  inputs: Object.fromEntries(Object.keys(spec.inputs ?? {}).map((p) => [p, `inputs.${p}`])),
                },
              ],
            },
          },
        }
      : { pipeline: ref, parameters: value, ...(target ? { target } : {}) };
    setOutcome(await check(body, (ps) => fieldProblems(ps, playbook ? "with" : "parameters")));
    setBusy(false);
  };
  const fields = outcome && "fields" in outcome ? outcome.fields : {};
  return (
    <section className="try-parameters" aria-labelledby="try-heading">
      <h3 id="try-heading">Try parameters</h3>
      <p className="muted">
        {playbook
          ? "Values a step using this playbook would give (with:); the gateway checks them."
          : "Values to launch with; the gateway checks them as a launch would."}
      </p>
      <ParamForm
        schema={spec.parameters ?? {}}
        value={value}
        onChange={(v) => {
          setValue(v);
          setOutcome(null);
        }}
        secrets={playbook ? (secrets ?? []) : undefined}
        problems={fields}
        idPrefix="try"
        label="Try parameters"
      />
      {!playbook && (
        <TargetPicker
          value={target}
          onChange={(t) => {
            setTarget(t);
            setOutcome(null);
          }}
          idPrefix="try-target"
        />
      )}
      <div className="toolbar">
        <button className="primary" onClick={run} disabled={busy}>Check</button>
        <button onClick={() => { setValue({}); setOutcome(null); }}>Reset to defaults</button>
      </div>
      <Result outcome={outcome} />
    </section>
  );
}

interface TryStepProps {
  /** The pipeline's document as stored (the step's `with:` is replaced in a copy). */
  doc: { spec?: { parameters?: JsonSchema; steps?: { id: string; uses?: string; with?: Record<string, unknown> }[] } };
  index: number;
}

/** One step's `with:` in a pipeline, edited with bindings to the pipeline's parameters and secret pickers,
 * checked by the gateway inside a copy of the pipeline. Changes nothing stored. */
export function TryStep({ doc, index }: TryStepProps) {
  const step = doc.spec!.steps![index];
  const [kindName, version] = (step.uses ?? "").split("@");
  const [k, n] = kindName.split("/");
  const used = useLoad(
    () => api.get<{ text: string }>(`/api/v1/catalogue/${encodeURIComponent(k)}/${encodeURIComponent(n)}${version ? `?version=${encodeURIComponent(version)}` : ""}`),
    [step.uses],
  );
  const [value, setValue] = useState<Record<string, unknown>>(step.with ?? {});
  const [outcome, setOutcome] = useState<Outcome>(null);
  const secrets = useSecretNames();
  const schema = useMemo(() => {
    if (!used.data) return null;
    try {
      return (parse(used.data.text) as { spec?: { parameters?: JsonSchema } } | null)?.spec?.parameters ?? {};
    } catch {
      return {};
    }
  }, [used.data]);
  const bindings = Object.keys((doc.spec?.parameters?.properties as object | undefined) ?? {});
  const run = async () => {
    const steps = doc.spec!.steps!.map((s, i) => (i === index ? { ...s, with: value } : s));
    const copy = { ...doc, spec: { ...doc.spec, steps } };
    setOutcome(
      await check({ pipeline: copy }, (ps) => {
        const { fields, rest, others } = stepFieldProblems(ps, step.id);
        return { fields, rest: [...rest, ...others] };
      }),
    );
  };
  const fields = outcome && "fields" in outcome ? outcome.fields : {};
  return (
    <div className="try-step" data-testid={`try-step-${step.id}`}>
      <Problems error={used.error} />
      {schema && (
        <ParamForm
          schema={schema}
          value={value}
          onChange={(v) => {
            setValue(v);
            setOutcome(null);
          }}
          bindings={bindings}
          secrets={secrets ?? []}
          problems={fields}
          idPrefix={`step-${index}`}
          label={`with: of step ${step.id}`}
        />
      )}
      <div className="toolbar">
        <button className="primary" onClick={run}>Check step</button>
      </div>
      <Result outcome={outcome} />
    </div>
  );
}

/** A step's "Try this step's values", loaded only once opened. */
export function TryStepDetails(props: TryStepProps) {
  const [open, setOpen] = useState(false);
  return (
    <details className="step-with" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Try this step's values</summary>
      {open && <TryStep {...props} />}
    </details>
  );
}
