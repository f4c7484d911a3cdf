import { OutputsEditor } from "../forms/PipelineParams";
import SchemaBuilder from "../forms/SchemaBuilder";
import type { JsonSchema } from "../forms/schema";
import CommitInput from "./CommitInput";
import { editDoc, type Command, type Json, type SpecDoc } from "./doc";
import type { EntryInfo } from "./entries";
import { useDraft } from "./useDraft";
import type { Located } from "./validation";

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PARAM = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PORT_TYPES = ["dataset", "model", "metrics", "text", "json", "file", "directory", "endpoint", "infra", "any"];

/** The undo label of a change to a map of named things (parameters, outputs). */
function changeLabel(what: string, before: Record<string, unknown>, after: Record<string, unknown>): string {
  const a = Object.keys(before);
  const b = Object.keys(after);
  if (b.length > a.length) return `add ${what}`;
  if (b.length < a.length) return `remove ${what} ${a.find((k) => !(k in after))}`;
  const renamed = a.findIndex((k, i) => k !== b[i]);
  if (renamed >= 0) return `rename ${what} ${a[renamed]}`;
  const changed = a.find((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return changed ? `edit ${what} ${changed}` : `edit ${what}s`;
}

const propsOf = (schema: JsonSchema) => (schema.properties ?? {}) as Record<string, unknown>;

/** The graph's own settings: name, description, parameters, inputs and outputs (each edit one change). */
export default function PipelinePanel({ doc, infos, problems, run, readOnly, isNew }: {
  doc: SpecDoc;
  infos: Record<string, EntryInfo | string>;
  problems: Located[];
  run: (c: Command) => void;
  readOnly?: boolean;
  isNew: boolean;
}) {
  // SchemaBuilder reports every keystroke: a typed default or description is one change once it settles
  const paramsDraft = useDraft<JsonSchema>(
    (doc.spec.parameters ?? { type: "object", properties: {} }) as JsonSchema,
    (next, prev) =>
      run(editDoc(changeLabel("parameter", propsOf(prev), propsOf(next)), (d) => ({ ...d, spec: { ...d.spec, parameters: next as Json } }))),
    (prev, next) => Object.keys(propsOf(prev)).join() !== Object.keys(propsOf(next)).join(), // a rename: at once
  );
  const outputs = doc.spec.outputs ?? {};
  const setOutputs = (label: string, next: Record<string, string>) =>
    run(editDoc(label, (d) => ({ ...d, spec: { ...d.spec, outputs: next } })));
  const inputs = doc.spec.inputs ?? {};
  const setInputs = (label: string, next: typeof inputs) =>
    run(editDoc(label, (d) => ({ ...d, spec: { ...d.spec, inputs: next } })));
  const sources: string[] = [];
  for (const n of Object.keys(inputs)) sources.push(`inputs.${n}`);
  for (const s of doc.spec.steps) {
    const info = infos[s.uses];
    if (typeof info === "object") for (const o of Object.keys(info.outputs)) sources.push(`${s.id}.${o}`);
  }
  const renameKey = <T,>(obj: Record<string, T>, from: string, to: string) =>
    Object.fromEntries(Object.entries(obj).map(([k, v]) => [k === from ? to : k, v]));
  return (
    <section className="pipeline-panel" aria-label="pipeline settings">
      <h2>{doc.kind} settings</h2>
      <label>
        Name{" "}
        <CommitInput
          label="pipeline name"
          value={doc.metadata.name}
          disabled={readOnly || !isNew}
          check={(v) => (NAME.test(v) ? "" : "use lowercase letters, digits and '-' (1-63), starting and ending with a letter or digit")}
          onCommit={(v) => run(editDoc(`rename pipeline to ${v}`, (d) => ({ ...d, metadata: { ...d.metadata, name: v } })))}
        />
      </label>
      <label>
        Description{" "}
        <CommitInput
          label="pipeline description"
          value={doc.metadata.description ?? ""}
          disabled={readOnly}
          onCommit={(v) => run(editDoc("edit description", (d) => ({ ...d, metadata: { ...d.metadata, description: v } })))}
        />
      </label>
      {problems.map((p, i) => (
        <div className="problem" key={i}>
          <strong>{p.problem.what}</strong> <span className="where">at {p.problem.where}</span>
          {p.problem.fix && <div className="fix">Fix: {p.problem.fix}</div>}
        </div>
      ))}
      <h3>Parameters</h3>
      <div onBlur={paramsDraft.onBlur}>
        <SchemaBuilder schema={paramsDraft.draft} onChange={paramsDraft.onChange} idPrefix="pipeline-param" disabled={readOnly} />
      </div>
      <h3>Inputs</h3>
      <table className="kv">
        <tbody>
          {Object.entries(inputs).map(([name, port]) => (
            <tr key={name}>
              <td>
                <CommitInput label={`input ${name} name`} value={name} disabled={readOnly}
                  check={(v) => (!PARAM.test(v) ? "letters, digits and _" : v in inputs ? "taken" : "")}
                  onCommit={(v) => setInputs(`rename input ${name}`, renameKey(inputs, name, v))} />
              </td>
              <td>
                <select aria-label={`input ${name} type`} disabled={readOnly} value={port.type ?? "any"}
                  onChange={(e) => setInputs(`type of input ${name}`, { ...inputs, [name]: { ...port, type: e.target.value } })}>
                  {PORT_TYPES.map((t) => <option key={t}>{t}</option>)}
                </select>
              </td>
              <td>
                {!readOnly && <button aria-label={`remove input ${name}`} onClick={() => {
                  const next = { ...inputs };
                  delete next[name];
                  setInputs(`remove input ${name}`, next);
                }}>×</button>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!readOnly && (
        <button onClick={() => {
          let n = 1;
          while (`input_${n}` in inputs) n++;
          setInputs("add input", { ...inputs, [`input_${n}`]: { type: "dataset" } });
        }}>Add input</button>
      )}
      <h3>Outputs</h3>
      <OutputsEditor
        outputs={outputs}
        onOutputsChange={(next) => setOutputs(changeLabel("output", outputs, next), next)}
        available={sources}
        idPrefix="pipeline-output"
        disabled={readOnly}
      />
    </section>
  );
}
