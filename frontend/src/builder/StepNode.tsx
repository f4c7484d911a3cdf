import { memo } from "react";
import { Handle, Position, type Node, type NodeProps } from "@xyflow/react";
import type { EntryInfo, PortInfo } from "./entries";

export interface StepData extends Record<string, unknown> {
  id: string;
  uses: string;
  info?: EntryInfo;
  /** Why the entry could not be read (ports unknown). */
  failed?: string;
  problems: string[];
  /** A pipeline's own inputs node: output handles only. */
  inputsNode?: Record<string, PortInfo>;
  onOpen?: (uses: string, id: string) => void;
  readOnly?: boolean;
}
export type StepNodeType = Node<StepData, "step">;

export const NODE_WIDTH = 210;
export const nodeHeight = (ins: number, outs: number) => 58 + 20 * Math.max(ins, outs, 1);

function PortRow({ name, port, side }: { name: string; port: PortInfo; side: "in" | "out" }) {
  return (
    <div className={`port port-${side}`} title={`${name}: ${port.type}${port.description ? ` — ${port.description}` : ""}`}>
      <Handle
        type={side === "in" ? "target" : "source"}
        position={side === "in" ? Position.Left : Position.Right}
        id={name}
        className={`handle type-${port.type}`}
        data-type={port.type}
        aria-label={`${side === "in" ? "input" : "output"} ${name} (${port.type})`}
      />
      <span className="port-name">{name}</span>
      <span className="port-type">{port.type}{port.optional ? "?" : ""}</span>
    </div>
  );
}

/** One step on the canvas: its id, what it uses, typed input ports left and output ports right. */
function StepNode({ data, selected }: NodeProps<StepNodeType>) {
  if (data.inputsNode) {
    return (
      <div className="step-node inputs-node" data-step-node={data.id}>
        <div className="step-title">pipeline inputs</div>
        <div className="ports">
          <div className="outs">
            {Object.entries(data.inputsNode).map(([n, p]) => <PortRow key={n} name={n} port={p} side="out" />)}
          </div>
        </div>
      </div>
    );
  }
  const info = data.info;
  const nested = info && info.kind !== "playbook";
  return (
    <div
      className={`step-node${selected ? " selected" : ""}${data.problems.length ? " has-problem" : ""}${nested ? " nested" : ""}`}
      data-step-node={data.id}
      data-invalid={data.problems.length ? "true" : undefined}
      title={data.problems.join("\n") || undefined}
    >
      <div className="step-title">
        <strong>{data.id}</strong>
        {nested && data.onOpen && (
          <button
            className="open-nested nodrag"
            aria-label={`open ${data.id}`}
            onClick={() => data.onOpen?.(data.uses, data.id)}
          >
            open ›
          </button>
        )}
      </div>
      <div className="step-uses">{data.uses}</div>
      {data.failed && <div className="field-problem">{data.failed}</div>}
      {!info && !data.failed && <div className="muted">reading ports…</div>}
      {info && (
        <div className="ports">
          <div className="ins">
            {Object.entries(info.inputs).map(([n, p]) => <PortRow key={n} name={n} port={p} side="in" />)}
          </div>
          <div className="outs">
            {Object.entries(info.outputs).map(([n, p]) => <PortRow key={n} name={n} port={p} side="out" />)}
          </div>
        </div>
      )}
      {data.problems.length > 0 && <div className="node-problem" role="note">{data.problems.length} problem{data.problems.length > 1 ? "s" : ""}</div>}
    </div>
  );
}

export default memo(StepNode);
