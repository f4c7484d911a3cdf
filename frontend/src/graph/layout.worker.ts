// Lays a graph out with dagre off the main thread, so a large graph never freezes the page.
import dagre from "@dagrejs/dagre";
import type { LayoutRequest, LayoutResponse } from "./layout";

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const { id, nodes, edges, direction } = event.data;
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: direction, nodesep: 30, ranksep: 60, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of edges) if (g.hasNode(e.source) && g.hasNode(e.target)) g.setEdge(e.source, e.target);
  dagre.layout(g);
  const positions: LayoutResponse["positions"] = {};
  for (const n of nodes) {
    const laid = g.node(n.id);
    // dagre gives centres; the canvas places nodes by their top-left corner
    positions[n.id] = { x: laid.x - n.width / 2, y: laid.y - n.height / 2 };
  }
  (self as unknown as Worker).postMessage({ id, positions } satisfies LayoutResponse);
};
