// Where nodes sit: kept in the browser per saved version (the spec has no field for them), or laid out.
import { layout } from "../graph/layout";
import type { Positions, SpecDoc } from "./doc";

const POSITIONS_KEY = "mlops.builder.positions:";

/** Node positions the browser kept for a saved version (the spec has no place for them). */
export function keptPositions(ref: string): Positions | null {
  try {
    const raw = localStorage.getItem(POSITIONS_KEY + ref);
    const p = raw ? (JSON.parse(raw) as unknown) : null;
    return p && typeof p === "object" && !Array.isArray(p) ? (p as Positions) : null;
  } catch {
    return null;
  }
}
export function keepPositions(ref: string, positions: Positions): void {
  try {
    localStorage.setItem(POSITIONS_KEY + ref, JSON.stringify(positions));
  } catch {
    // storage full or refused: the graph is laid out again when it is opened
  }
}

/** Positions for every step of `doc` by automatic layout (dagre in a worker). */
export async function autoLayout(doc: SpecDoc): Promise<Positions> {
  const steps = doc.spec?.steps ?? [];
  const ids = new Set(steps.map((s) => s.id));
  const edges = steps.flatMap((s) =>
    Object.values(s.inputs ?? {})
      .map((src) => String(src).split(".")[0])
      .filter((src) => ids.has(src))
      .map((source) => ({ source, target: s.id })),
  );
  return layout(steps.map((s) => ({ id: s.id, width: 210, height: 120 })), edges, "LR");
}

