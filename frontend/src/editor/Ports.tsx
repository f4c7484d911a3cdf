// The typed input or output ports of the playbook being edited.
import { PORT_TYPES, type PortDraft, type PortType } from "./draft";

export interface PortsProps {
  kind: "input" | "output";
  ports: PortDraft[];
  onChange: (ports: PortDraft[]) => void;
  /** A problem per port index (checked as the user types, or located by the server). */
  problems: Record<number, string>;
}

export default function Ports({ kind, ports, onChange, problems }: PortsProps) {
  const set = (i: number, patch: Partial<PortDraft>) => onChange(ports.map((p, j) => (j === i ? { ...p, ...patch } : p)));
  const title = kind === "input" ? "Inputs" : "Outputs";
  return (
    <section className="ports" aria-labelledby={`${kind}s-title`}>
      <h3 id={`${kind}s-title`}>{title}</h3>
      {ports.map((p, i) => (
        <div className="port-row" key={i} data-testid={`${kind}-${i}`}>
          <label>
            Name
            <input
              value={p.name}
              aria-label={`${kind} ${i + 1} name`}
              aria-invalid={!!problems[i]}
              aria-describedby={problems[i] ? `${kind}-${i}-problem` : undefined}
              onChange={(e) => set(i, { name: e.target.value })}
            />
          </label>
          <label>
            Type
            <select value={p.type} aria-label={`${kind} ${i + 1} type`} onChange={(e) => set(i, { type: e.target.value as PortType })}>
              {PORT_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
            </select>
          </label>
          <label className="wide">
            Description
            <input value={p.description} aria-label={`${kind} ${i + 1} description`} onChange={(e) => set(i, { description: e.target.value })} />
          </label>
          <button type="button" aria-label={`Remove ${kind} ${p.name || i + 1}`} onClick={() => onChange(ports.filter((_, j) => j !== i))}>
            Remove
          </button>
          {problems[i] && <span className="field-problem" role="alert" id={`${kind}-${i}-problem`}>{problems[i]}</span>}
        </div>
      ))}
      <button
        type="button"
        onClick={() => {
          let n = ports.length + 1;
          while (ports.some((p) => p.name === `${kind}${n}`)) n++;
          onChange([...ports, { name: `${kind}${n}`, type: kind === "input" ? "text" : "json", description: "" }]);
        }}
      >
        Add {kind}
      </button>
    </section>
  );
}
