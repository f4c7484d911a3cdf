// Automatic layout of a graph (dagre, in a Web Worker): used by the builder's "tidy up" and the run page.

export interface LayoutNode {
  id: string;
  width: number;
  height: number;
}
export interface LayoutEdge {
  source: string;
  target: string;
}
export type Positions = Record<string, { x: number; y: number }>;
export interface LayoutRequest {
  id: number;
  nodes: LayoutNode[];
  edges: LayoutEdge[];
  direction: "LR" | "TB";
}
export interface LayoutResponse {
  id: number;
  positions: Positions;
}

let worker: Worker | null = null;
let next = 0;
const waiting = new Map<number, (p: Positions) => void>();

function theWorker(): Worker {
  if (!worker) {
    worker = new Worker(new URL("./layout.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<LayoutResponse>) => {
      waiting.get(event.data.id)?.(event.data.positions);
      waiting.delete(event.data.id);
    };
  }
  return worker;
}

/** Top-left positions for `nodes` so that `edges` flow in `direction` (left to right by default).
 * Edges whose ends are not among `nodes` are ignored (lay out a selection by passing only its nodes). */
export function layout(nodes: LayoutNode[], edges: LayoutEdge[], direction: "LR" | "TB" = "LR"): Promise<Positions> {
  const id = ++next;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    theWorker().postMessage({ id, nodes, edges, direction } satisfies LayoutRequest);
  });
}
