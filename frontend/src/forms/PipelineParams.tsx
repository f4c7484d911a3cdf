// PipelineParams: a pipeline's own `parameters` (SchemaBuilder) and `outputs` (name → `step.output`).
//
// Props:
//   schema           the pipeline's `spec.parameters` (JSON Schema of an object)
//   onChange         called with the whole new parameter schema
//   outputs          the pipeline's `spec.outputs`: output name → "step.output"
//   onOutputsChange  called with the whole new outputs map
//   available        the step outputs that may be exposed ("train.model", ...), in the order to offer them
//   idPrefix         prefix of the DOM ids (default "pp")

import { NameInput } from "./SchemaBuilder";
import SchemaBuilder from "./SchemaBuilder";
import type { JsonSchema } from "./schema";
import "./forms.css";

export interface PipelineParamsProps {
  schema: JsonSchema;
  onChange: (schema: JsonSchema) => void;
  outputs: Record<string, string>;
  onOutputsChange: (outputs: Record<string, string>) => void;
  available: string[];
  idPrefix?: string;
  disabled?: boolean;
}

/** The outputs of a pipeline: each a name bound to one step output. */
export function OutputsEditor({ outputs, onOutputsChange, available, idPrefix = "po", disabled }: Omit<PipelineParamsProps, "schema" | "onChange">) {
  const names = Object.keys(outputs);
  const emit = (entries: [string, string][]) => onOutputsChange(Object.fromEntries(entries));
  const add = () => {
    const source = available.find((a) => !Object.values(outputs).includes(a)) ?? available[0] ?? "";
    const base = (source.split(".").pop() || "output").replace(/-/g, "_"); // a step output may have '-'
    let name = base;
    for (let i = 2; names.includes(name); i++) name = `${base}_${i}`;
    emit([...Object.entries(outputs), [name, source]]);
  };
  return (
    <div className="outputs-editor" role="group" aria-label="Pipeline outputs">
      {names.length === 0 && <p className="muted">No outputs: a pipeline's outputs are what a run publishes and a parent pipeline can connect.</p>}
      {names.length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>From step output</th><th><span className="sr-only">Remove</span></th></tr></thead>
          <tbody>
            {names.map((name, i) => (
              <tr key={i} data-output={name}>
                <td>
                  <NameInput
                    id={`${idPrefix}-${i}-name`}
                    value={name}
                    taken={names.filter((n) => n !== name)}
                    onRename={(to) => emit(Object.entries(outputs).map(([n, s]) => [n === name ? to : n, s]))}
                    label={`name of output ${i + 1}`}
                    disabled={disabled}
                  />
                </td>
                <td>
                  <select
                    id={`${idPrefix}-${i}-source`}
                    className="pf-input"
                    aria-label={`source of output ${name}`}
                    disabled={disabled}
                    value={outputs[name]}
                    onChange={(e) => emit(Object.entries(outputs).map(([n, s]) => [n, n === name ? e.target.value : s]))}
                    aria-invalid={!available.includes(outputs[name]) || undefined}
                  >
                    {!available.includes(outputs[name]) && <option value={outputs[name]}>{`${outputs[name] || "(none)"} (no such step output)`}</option>}
                    {available.map((a) => <option key={a} value={a}>{a}</option>)}
                  </select>
                </td>
                <td>
                  <button type="button" className="pf-button" aria-label={`remove output ${name}`} disabled={disabled} onClick={() => emit(Object.entries(outputs).filter(([n]) => n !== name))}>Remove</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <button type="button" className="pf-button" onClick={add} disabled={disabled || available.length === 0}>+ Add output</button>
    </div>
  );
}

/** A pipeline's parameters and outputs, as the builder's side panel shows them when no node is selected. */
export default function PipelineParams({ schema, onChange, outputs, onOutputsChange, available, idPrefix = "pp", disabled }: PipelineParamsProps) {
  return (
    <div className="pipeline-params">
      <h3>Parameters</h3>
      <SchemaBuilder schema={schema} onChange={onChange} idPrefix={`${idPrefix}-p`} disabled={disabled} />
      <h3>Outputs</h3>
      <OutputsEditor outputs={outputs} onOutputsChange={onOutputsChange} available={available} idPrefix={`${idPrefix}-o`} disabled={disabled} />
    </div>
  );
}
