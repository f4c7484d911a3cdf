import CommitInput from "./CommitInput";
import { editDoc, type Command, type Json, type SpecDoc } from "./doc";
import type { EntryInfo } from "./entries";
import type { Located } from "./validation";

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const PARAM = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TYPES = ["string", "integer", "number", "boolean"];
const PORT_TYPES = ["dataset", "model", "metrics", "text", "json", "file", "directory", "endpoint", "infra", "any"];

type Props = Record<string, Json>;

function parseDefault(type: string, text: string): unknown {
  if (text === "") return undefined;
  if (type === "integer" || type === "number") return Number.isFinite(Number(text)) ? Number(text) : text;
  if (type === "boolean") return text === "true";
  return text;
}

/** The graph's own settings: name, description, parameters, inputs and outputs (each edit one change). */
export default function PipelinePanel({ doc, infos, problems, run, readOnly, isNew }: {
  doc: SpecDoc;
  infos: Record<string, EntryInfo | string>;
  problems: Located[];
  run: (c: Command) => void;
  readOnly?: boolean;
  isNew: boolean;
}) {
  const params = (doc.spec.parameters ?? { type: "object", properties: {} }) as Json;
  const props = (params.properties ?? {}) as Props;
  const setProps = (label: string, next: Props) =>
    run(editDoc(label, (d) => ({ ...d, spec: { ...d.spec, parameters: { ...params, type: "object", properties: next } } })));
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
      <table className="kv">
        <tbody>
          {Object.entries(props).map(([name, s]) => (
            <tr key={name}>
              <td>
                <CommitInput label={`parameter ${name} name`} value={name} disabled={readOnly}
                  check={(v) => (!PARAM.test(v) ? "letters, digits and _" : v in props ? "taken" : "")}
                  onCommit={(v) => setProps(`rename parameter ${name}`, renameKey(props, name, v))} />
              </td>
              <td>
                <select aria-label={`parameter ${name} type`} disabled={readOnly} value={String(s.type ?? "string")}
                  onChange={(e) => setProps(`type of ${name}`, { ...props, [name]: { ...s, type: e.target.value, default: parseDefault(e.target.value, String(s.default ?? "")) } })}>
                  {TYPES.map((t) => <option key={t}>{t}</option>)}
                </select>
              </td>
              <td>
                <CommitInput label={`parameter ${name} default`} value={s.default === undefined ? "" : String(s.default)} disabled={readOnly}
                  onCommit={(v) => {
                    const next: Json = { ...s, default: parseDefault(String(s.type ?? "string"), v) };
                    if (next.default === undefined) delete next.default;
                    setProps(`default of ${name}`, { ...props, [name]: next });
                  }} />
              </td>
              <td>
                {!readOnly && <button aria-label={`remove parameter ${name}`} onClick={() => {
                  const next = { ...props };
                  delete next[name];
                  setProps(`remove parameter ${name}`, next);
                }}>×</button>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!readOnly && (
        <button onClick={() => {
          let n = 1;
          while (`param_${n}` in props) n++;
          setProps("add parameter", { ...props, [`param_${n}`]: { type: "string", default: "" } });
        }}>Add parameter</button>
      )}
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
      <table className="kv">
        <tbody>
          {Object.entries(outputs).map(([name, src]) => (
            <tr key={name}>
              <td>
                <CommitInput label={`output ${name} name`} value={name} disabled={readOnly}
                  check={(v) => (!PARAM.test(v) ? "letters, digits and _" : v in outputs ? "taken" : "")}
                  onCommit={(v) => setOutputs(`rename output ${name}`, renameKey(outputs, name, v))} />
              </td>
              <td>
                <select aria-label={`output ${name} source`} disabled={readOnly} value={src}
                  onChange={(e) => setOutputs(`source of ${name}`, { ...outputs, [name]: e.target.value })}>
                  {!sources.includes(src) && <option value={src}>{src}</option>}
                  {sources.map((o) => <option key={o}>{o}</option>)}
                </select>
              </td>
              <td>
                {!readOnly && <button aria-label={`remove output ${name}`} onClick={() => {
                  const next = { ...outputs };
                  delete next[name];
                  setOutputs(`remove output ${name}`, next);
                }}>×</button>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!readOnly && sources.length > 0 && (
        <button onClick={() => {
          const src = sources[sources.length - 1];
          let name = src.split(".")[1].replace(/-/g, "_");
          for (let n = 2; name in outputs; n++) name = `${src.split(".")[1].replace(/-/g, "_")}_${n}`;
          setOutputs("add output", { ...outputs, [name]: src });
        }}>Add output</button>
      )}
    </section>
  );
}
