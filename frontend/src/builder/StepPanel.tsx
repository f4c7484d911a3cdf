import { useEffect, useRef, useState } from "react";
import ParamForm from "../forms/ParamForm";
import TargetPicker, { type TargetValue } from "../forms/TargetPicker";
import { toDotted } from "../forms/schema";
import CommitInput from "./CommitInput";
import { remove, updateStep, type Command, type Json, type Kind, type Step } from "./doc";
import { splitRef, type EntryInfo } from "./entries";
import { useDraft } from "./useDraft";
import type { Located } from "./validation";

const STEP_ID = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The selected step: id, pinned version, parameters (through ParamForm), target, its problems. */
export default function StepPanel(props: {
  step: Step;
  steps: Step[];
  info?: EntryInfo | string;
  kind: Kind;
  bindings: string[];
  secrets: string[];
  problems: Located[];
  run: (c: Command) => void;
  /** Rename the step (the caller keeps it selected). */
  onRename: (from: string, to: string) => void;
  readOnly?: boolean;
}) {
  const { step, info, run, readOnly } = props;
  const ref = splitRef(step.uses);
  const entry = typeof info === "object" ? info : undefined;
  const [draft, setDraft] = useState<Json>(step.with ?? {});
  const committed = useRef<Json>(step.with ?? {});
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => {
    setDraft(step.with ?? {});
    committed.current = step.with ?? {};
  }, [step.with, step.id]);
  const commit = (value: Json) => {
    clearTimeout(timer.current);
    if (JSON.stringify(value) === JSON.stringify(committed.current)) return;
    committed.current = value;
    run(updateStep(step.id, { with: value }, `edit parameters of ${step.id}`));
  };
  // one field edit is one change: committed when the field loses focus, or once typing settles
  const onChange = (value: Json) => {
    setDraft(value);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => commit(value), 1200);
  };
  useEffect(() => () => clearTimeout(timer.current), []);
  const fields: Record<string, string> = {};
  for (const p of props.problems) {
    if (!p.field) continue;
    const key = toDotted(`.${p.field}`); // the form's dotted paths: "grid[0].C" → "grid.0.C"
    const message = `${p.problem.what}${p.problem.fix ? `. Fix: ${p.problem.fix}` : ""}`;
    fields[key] = fields[key] ? `${fields[key]}; ${message}` : message;
  }
  // a typed constraint is one change once it settles; an empty `options` is left out of the spec
  const target = useDraft<TargetValue | null>(
    step.target ? { provider: step.target.provider, options: (step.target.options ?? {}) as Record<string, unknown> } : null,
    (next) => {
      const options = next?.options && Object.keys(next.options).length ? (next.options as Json) : undefined;
      run(updateStep(step.id, { target: next ? { provider: next.provider, ...(options ? { options } : {}) } : undefined }, `target of ${step.id}`));
    },
  );
  const taken = new Set(props.steps.map((s) => s.id));
  return (
    <section className="step-panel" aria-label={`step ${step.id}`}>
      <h2>Step <code>{step.id}</code></h2>
      <label>
        Step id{" "}
        <CommitInput
          label="step id"
          value={step.id}
          disabled={readOnly}
          check={(v) =>
            !STEP_ID.test(v) ? "use lowercase letters, digits and '-' (1-63), starting and ending with a letter or digit"
              : taken.has(v) ? `step id ${v} is taken` : ""}
          onCommit={(v) => props.onRename(step.id, v)}
        />
      </label>
      <div className="uses">
        Uses <code>{ref.kind}/{ref.name}</code> at{" "}
        <select
          aria-label="pinned version"
          value={ref.version}
          disabled={readOnly || !entry}
          onChange={(e) => run(updateStep(step.id, { uses: `${ref.kind}/${ref.name}@${e.target.value}` }, `pin ${step.id} to ${e.target.value}`))}
        >
          {!entry?.versions.includes(ref.version) && <option value={ref.version}>{ref.version || "(latest)"}</option>}
          {entry?.versions.map((v) => <option key={v} value={v}>{v}</option>)}
        </select>
      </div>
      {props.kind === "metapipeline" && (
        <div onBlur={target.onBlur}>
          <TargetPicker value={target.draft} onChange={target.onChange} idPrefix={`step-${step.id}-target`} disabled={readOnly} />
        </div>
      )}
      {typeof info === "string" && <p className="field-problem" role="alert">{info}</p>}
      {entry?.description && <p className="muted">{entry.description}</p>}
      {props.problems.filter((p) => !p.field).map((p, i) => (
        <div className="problem" key={i}>
          <strong>{p.problem.what}</strong>
          {p.problem.fix && <div className="fix">Fix: {p.problem.fix}</div>}
        </div>
      ))}
      {entry && (
        <div
          className="step-params"
          onBlur={(e) => {
            if (!e.currentTarget.contains(e.relatedTarget as Node | null)) commit(draft);
          }}
        >
          <h3>Parameters</h3>
          <ParamForm
            schema={entry.parameters}
            value={draft}
            onChange={onChange}
            bindings={props.bindings}
            secrets={props.secrets}
            problems={fields}
            idPrefix={`step-${step.id}`}
            label={`parameters of ${step.id}`}
            disabled={readOnly}
          />
        </div>
      )}
      {!readOnly && (
        <button className="danger" onClick={() => run(remove([step.id], []))}>Delete step</button>
      )}
    </section>
  );
}
