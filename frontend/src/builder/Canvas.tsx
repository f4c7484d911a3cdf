// The graph on a canvas (@xyflow/react): nodes and edges derived from the document; moves, connections,
// drops and deletions become commands. Selection and a drag in progress are view state, not commands.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type NodeChange,
  type EdgeChange,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { INPUTS_NODE, connect, moveNodes, type Command, type GraphState, type Positions, type Xy } from "./doc";
import { incompatible, type EntryInfo, type PortInfo } from "./entries";
import StepNode, { type StepNodeType } from "./StepNode";

const nodeTypes = { step: StepNode };
export const DRAG_TYPE = "application/x-mlops-entry";

export interface CanvasProps {
  state: GraphState;
  infos: Record<string, EntryInfo | string>;
  problems: Record<string, string[]>;
  selected: Set<string>;
  selectedEdges: Set<string>;
  onSelect: (nodes: Set<string>, edges: Set<string>) => void;
  run: (c: Command) => void;
  /** A catalogue entry dropped at a flow position. */
  onDropEntry?: (uses: string, at: Xy) => void;
  onOpen?: (uses: string, id: string) => void;
  readOnly?: boolean;
  /** Changes when the view should fit the whole graph again (a load, a nested graph opened). */
  fitKey: string;
}

/** `STEP.OUTPUT` of a connection's source handle. */
const sourceOf = (node: string, handle: string | null | undefined) =>
  `${node === INPUTS_NODE ? "inputs" : node}.${handle ?? ""}`;

export default function Canvas(props: CanvasProps) {
  const { state, infos, problems, selected, selectedEdges, onSelect, run, readOnly } = props;
  const flow = useReactFlow();
  const [drag, setDrag] = useState<Positions | null>(null);
  const [hint, setHint] = useState<{ ok: boolean; text: string } | null>(null);
  const hintRef = useRef<string>("");
  const wrapper = useRef<HTMLDivElement>(null);
  const steps = state.doc.spec.steps;
  const pipelineInputs = state.doc.spec.inputs ?? {};

  const ports = useCallback(
    (node: string): { ins: Record<string, PortInfo>; outs: Record<string, PortInfo> } | null => {
      if (node === INPUTS_NODE) {
        const outs = Object.fromEntries(Object.entries(pipelineInputs).map(([k, p]) => [k, { type: p.type ?? "any" }]));
        return { ins: {}, outs };
      }
      const step = steps.find((s) => s.id === node);
      const info = step && infos[step.uses];
      return info && typeof info !== "string" ? { ins: info.inputs, outs: info.outputs } : null;
    },
    [steps, infos, pipelineInputs],
  );

  // sizes the canvas measured: given back on every node, or it would measure (and hide) them again
  const [dims, setDims] = useState<Record<string, { width: number; height: number }>>({});
  // a node object is kept while nothing it shows changed, so the canvas redraws only what changed
  const cache = useRef(new Map<string, { deps: unknown[]; node: StepNodeType }>());

  const baseNodes = useMemo<StepNodeType[]>(() => {
    const kept = cache.current;
    const next = new Map<string, { deps: unknown[]; node: StepNodeType }>();
    const make = (id: string, deps: unknown[], build: () => StepNodeType) => {
      const old = kept.get(id);
      const node = old && old.deps.length === deps.length && old.deps.every((d, i) => d === deps[i]) ? old.node : build();
      next.set(id, { deps, node });
      return node;
    };
    const nodes: StepNodeType[] = steps.map((s, i) => {
      const info = infos[s.uses];
      const position = state.pos[s.id] ?? { x: 40 + (i % 6) * 260, y: 40 + Math.floor(i / 6) * 160 };
      const issues = problems[s.id] ?? [];
      const deps = [s.id, s.uses, info, issues.join("\n"), position, selected.has(s.id), dims[s.id], readOnly, props.onOpen];
      return make(s.id, deps, () => ({
        id: s.id,
        type: "step",
        position,
        selected: selected.has(s.id),
        draggable: !readOnly,
        measured: dims[s.id],
        data: {
          id: s.id,
          uses: s.uses,
          info: typeof info === "object" ? info : undefined,
          failed: typeof info === "string" ? info : undefined,
          problems: issues,
          onOpen: props.onOpen,
          readOnly,
        },
      }));
    });
    if (Object.keys(pipelineInputs).length) {
      nodes.unshift({
        id: INPUTS_NODE,
        type: "step",
        position: state.pos[INPUTS_NODE] ?? { x: -260, y: 40 },
        selected: selected.has(INPUTS_NODE),
        draggable: !readOnly,
        deletable: false,
        measured: dims[INPUTS_NODE],
        data: { id: INPUTS_NODE, uses: "", problems: [], inputsNode: ports(INPUTS_NODE)?.outs ?? {} },
      });
    }
    cache.current = next;
    return nodes;
  }, [steps, infos, problems, selected, state.pos, readOnly, props.onOpen, pipelineInputs, ports, dims]);

  const nodes = useMemo(
    () => (drag ? baseNodes.map((n) => (drag[n.id] ? { ...n, position: drag[n.id] } : n)) : baseNodes),
    [baseNodes, drag],
  );

  const edges = useMemo<Edge[]>(() => {
    const ids = new Set(steps.map((s) => s.id));
    const out: Edge[] = [];
    for (const s of steps) {
      for (const [input, src] of Object.entries(s.inputs ?? {})) {
        const [from, handle] = String(src).split(".", 2);
        const source = from === "inputs" ? INPUTS_NODE : from;
        if (source !== INPUTS_NODE && !ids.has(source)) continue; // dangling: the validation says so
        const id = `${s.id}.${input}`;
        out.push({ id, source, sourceHandle: handle, target: s.id, targetHandle: input, selected: selectedEdges.has(id) });
      }
    }
    return out;
  }, [steps, selectedEdges]);

  const onNodesChange = useCallback(
    (changes: NodeChange<StepNodeType>[]) => {
      let sel: Set<string> | null = null;
      const moving: Positions = {};
      let moved = false;
      let ended = false;
      let sized: Record<string, { width: number; height: number }> | null = null;
      for (const c of changes) {
        if (c.type === "dimensions" && c.dimensions) {
          sized ??= {};
          sized[c.id] = c.dimensions;
          continue;
        }
        if (c.type === "select") {
          sel ??= new Set(selected);
          if (c.selected) sel.add(c.id);
          else sel.delete(c.id);
        } else if (c.type === "position" && c.position) {
          moving[c.id] = c.position;
          moved = true;
          if (!c.dragging) ended = true;
        } else if (c.type === "position" && c.dragging === false) ended = true;
      }
      if (sized) {
        const got = sized;
        setDims((d) => ({ ...d, ...got }));
      }
      if (sel) onSelect(sel, selectedEdges);
      if (moved) setDrag((d) => ({ ...(d ?? {}), ...moving }));
      if (ended) {
        setDrag((d) => {
          const all = { ...(d ?? {}), ...moving };
          if (Object.keys(all).length) queueMicrotask(() => run(moveNodes(all)));
          return null;
        });
      }
    },
    [selected, selectedEdges, onSelect, run],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      let sel: Set<string> | null = null;
      for (const c of changes) {
        if (c.type === "select") {
          sel ??= new Set(selectedEdges);
          if (c.selected) sel.add(c.id);
          else sel.delete(c.id);
        }
      }
      if (sel) onSelect(selected, sel);
    },
    [selected, selectedEdges, onSelect],
  );

  const check = useCallback(
    (c: Connection | Edge): string => {
      if (readOnly) return "this graph is read-only";
      if (c.source === c.target) return "a step cannot feed itself";
      const from = ports(c.source)?.outs[c.sourceHandle ?? ""];
      const to = ports(c.target)?.ins[c.targetHandle ?? ""];
      if (!from || !to) return "the ports of this step are not known yet";
      const why = incompatible(from.type, to.type);
      if (why) return why;
      // a connection that closes a loop is refused too: the graph must stay a DAG
      const up = new Map(steps.map((s) => [s.id, Object.values(s.inputs ?? {}).map((v) => String(v).split(".")[0])]));
      const seen = new Set<string>();
      const stack = [c.source];
      while (stack.length) {
        const n = stack.pop()!;
        if (n === c.target) return `it would make a cycle (${c.target} already feeds ${c.source})`;
        if (seen.has(n)) continue;
        seen.add(n);
        stack.push(...(up.get(n) ?? []));
      }
      return "";
    },
    [ports, steps, readOnly],
  );

  const isValidConnection = useCallback(
    (c: Connection | Edge) => {
      const why = check(c);
      const text = why
        ? `Cannot connect ${sourceOf(c.source, c.sourceHandle)} → ${c.target}.${c.targetHandle}: ${why}`
        : `Connect ${sourceOf(c.source, c.sourceHandle)} → ${c.target}.${c.targetHandle}`;
      if (hintRef.current !== text) {
        hintRef.current = text;
        queueMicrotask(() => setHint({ ok: !why, text }));
      }
      return !why;
    },
    [check],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (check(c) || !c.targetHandle) return;
      run(connect(sourceOf(c.source, c.sourceHandle), c.target, c.targetHandle));
    },
    [check, run],
  );

  const endConnect = useCallback(() => {
    hintRef.current = "";
    setHint(null);
  }, []);

  const empty = !steps.length;
  useEffect(() => {
    if (empty) return; // a fit of nothing would wait and then jump to the first node dropped
    const t = setTimeout(() => flow.fitView({ padding: 0.15, maxZoom: 1.2 }), 60);
    return () => clearTimeout(t);
    // fitted once per graph shown, not on every change
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.fitKey, flow]);

  const onDragOver = useCallback((e: React.DragEvent) => {
    if (e.dataTransfer.types.includes(DRAG_TYPE)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
    }
  }, []);
  const onDrop = useCallback(
    (e: React.DragEvent) => {
      const uses = e.dataTransfer.getData(DRAG_TYPE);
      if (!uses || !props.onDropEntry) return;
      e.preventDefault();
      props.onDropEntry(uses, flow.screenToFlowPosition({ x: e.clientX, y: e.clientY }));
    },
    [flow, props],
  );

  return (
    <div
      className="canvas"
      data-testid="canvas"
      aria-label="pipeline graph"
      role="region"
      tabIndex={0}
      ref={wrapper}
      // the canvas takes the focus on any press (the pan handler keeps the browser from moving it), so
      // that the keyboard shortcuts act on it and not on the field or button focused before
      onPointerDownCapture={(e) => {
        if (!(e.target as HTMLElement).closest("button, input, select, textarea, .react-flow__node")) {
          wrapper.current?.focus({ preventScroll: true });
        }
      }}
    >
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        isValidConnection={isValidConnection}
        onConnectEnd={endConnect}
        onDragOver={onDragOver}
        onDrop={onDrop}
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={["Meta", "Control"]}
        nodesConnectable={!readOnly}
        minZoom={0.05}
        maxZoom={2}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable ariaLabel="minimap" />
      </ReactFlow>
      {hint && (
        <div className={`connect-hint ${hint.ok ? "ok" : "refused"}`} role="status" data-testid="connect-hint">
          {hint.text}
        </div>
      )}
      {!steps.length && !readOnly && (
        <div className="canvas-empty">Drag a playbook or pipeline from the palette here (or press its “add” button).</div>
      )}
    </div>
  );
}
