// Where nodes sit: kept in the browser per saved version (the spec has no field for them), or laid out.
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

/** Positions at once (no worker round trip): each step in the column of its depth in the graph (the
 * longest chain of connections leading to it), stacked in declaration order. "Tidy up" refines it. */
export function quickLayout(doc: SpecDoc): Positions {
  const steps = doc.spec?.steps ?? [];
  const ups = new Map(steps.map((s) => [s.id, Object.values(s.inputs ?? {}).map((v) => String(v).split(".")[0])]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id) || !ups.has(id)) return -1; // a cycle (the validation says so) or not a step
    visiting.add(id);
    const d = 1 + Math.max(-1, ...(ups.get(id) ?? []).map(depthOf));
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const pos: Positions = {};
  for (const s of steps) {
    const d = Math.max(0, depthOf(s.id));
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    pos[s.id] = { x: d * 270, y: r * 150 };
  }
  return pos;
}
