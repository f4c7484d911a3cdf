// Where each problem of the gateway belongs on the editor page: the name field, a port, the parameter
// schema, the code, a sample, or the page itself.
import type { Problem } from "../api";

export interface Routed {
  name: Problem[];
  inputs: Record<string, Problem[]>;
  outputs: Record<string, Problem[]>;
  parameters: Problem[];
  code: Problem[];
  samples: Record<string, Problem[]>;
  other: Problem[];
}

export const noProblems = (): Routed => ({ name: [], inputs: {}, outputs: {}, parameters: [], code: [], samples: {}, other: [] });

function push(map: Record<string, Problem[]>, key: string, p: Problem) {
  (map[key] ??= []).push(p);
}

export function route(problems: Problem[]): Routed {
  const r = noProblems();
  for (const p of problems) {
    const w = p.where;
    let m: RegExpExecArray | null;
    if (/spec\.python/.test(w)) r.code.push(p);
    else if (/metadata\.name/.test(w)) r.name.push(p);
    else if ((m = /spec\.(inputs|outputs)\.([A-Za-z0-9_-]+)/.exec(w))) push(m[1] === "inputs" ? r.inputs : r.outputs, m[2], p);
    else if ((m = /^body\.inputs\.([A-Za-z0-9_-]+)/.exec(w))) push(r.samples, m[1], p);
    else if (/spec\.parameters|\.with\b|\.with\./.test(w)) r.parameters.push(p);
    else r.other.push(p);
  }
  return r;
}

/** The line of the code a problem points at (`...spec.python.code:LINE:COL`), or null. */
export function codeLine(p: Problem): number | null {
  const m = /spec\.python\.code:(\d+)(?::\d+)?/.exec(p.where);
  return m ? Number(m[1]) : null;
}
