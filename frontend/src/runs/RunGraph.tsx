// The run's DAG, read-only, laid out by dagre in a worker. Each node subscribes to its own step's status
// in the RunStore, so a batch of status changes re-renders only the nodes that changed (the node and edge
// arrays never change after the layout).
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useEffect, useMemo, useState } from "react";
import { layout, type Positions } from "../graph/layout";
import { useStepStatus, type RunStore } from "./events";

export interface GraphStep {
  id: string;
  needs: string[];
  playbook: string | null;
  provider: string;
  deployment: string | null;
}

type StepData = { step: string; playbook: string; provider: string; store: RunStore; onSelect: (s: string) => void };
type StepNodeType = Node<StepData, "step">;

const WIDTH = 200;
const HEIGHT = 48;
/** Above this many steps the graph opens at a readable zoom on its first steps (fit all with ⛶), and
 * only the nodes in view are in the page. */
export const BIG_GRAPH = 60;
const FIRST = 12;

const StepNode = memo(function StepNode({ data }: NodeProps<StepNodeType>) {
  const status = useStepStatus(data.store, data.step);
  return (
    <div className={`run-node run-node-${status}`} data-node={data.step} data-status={status} title={`${data.step}: ${status}`}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <button className="run-node-name nodrag" onClick={() => data.onSelect(data.step)}>{data.step}</button>
      <div className="run-node-meta">
        <span className="run-node-status">{status}</span> {data.playbook} {data.provider !== "local" && `· ${data.provider}`}
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});
const NODE_TYPES = { step: StepNode };

/** The run's steps and edges; clicking a node selects its logs. */
export default function RunGraph({ steps, store, onSelect }: { steps: GraphStep[]; store: RunStore; onSelect: (s: string) => void }) {
  const [positions, setPositions] = useState<Positions | null>(null);
  const edges = useMemo<Edge[]>(
    () => steps.flatMap((s) => s.needs.map((n) => ({ id: `${n}->${s.id}`, source: n, target: s.id, focusable: false }))),
    [steps],
  );
  useEffect(() => {
    let live = true;
    layout(
      steps.map((s) => ({ id: s.id, width: WIDTH, height: HEIGHT })),
      edges,
      "LR",
    ).then((p) => live && setPositions(p));
    return () => {
      live = false;
    };
  }, [steps, edges]);
  const nodes = useMemo<StepNodeType[]>(
    () =>
      positions
        ? steps.map((s) => ({
            id: s.id,
            type: "step",
            position: positions[s.id] ?? { x: 0, y: 0 },
            draggable: false,
            connectable: false,
            selectable: false,
            data: { step: s.id, playbook: (s.playbook ?? "").replace(/^playbook\//, ""), provider: s.provider, store, onSelect },
          }))
        : [],
    [positions, steps, store, onSelect],
  );
  const big = steps.length > BIG_GRAPH;
  const fit = useMemo(
    () => (big ? { nodes: steps.slice(0, FIRST).map((s) => ({ id: s.id })), maxZoom: 1 } : { maxZoom: 1.2 }),
    [big, steps],
  );
  if (!positions) return <div className="run-graph loading" aria-busy="true">Laying out {steps.length} steps…</div>;
  return (
    <>
      {big && (
        <p className="muted graph-note" role="note">
          {steps.length} steps: the graph opens on the first ones at a readable size. Drag to pan, zoom with
          the wheel or the − button, or show every step with the “fit view” button. The step list below has
          every step.
        </p>
      )}
      <div className="run-graph" data-testid="run-graph" aria-label="pipeline graph">
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          fitView
          fitViewOptions={fit}
          onlyRenderVisibleElements={big}
          minZoom={0.05}
          nodesDraggable={false}
          nodesConnectable={false}
          elementsSelectable={false}
        >
          <Background />
          <Controls showInteractive={false} fitViewOptions={{ maxZoom: 1.2 }} />
        </ReactFlow>
      </div>
    </>
  );
}
