// The builder's one source of truth: a Pipeline/MetaPipeline spec document plus the nodes' positions.
// Every change is a command (a pure function of the state); the commands are the undo stack.

export type Kind = "pipeline" | "metapipeline";
export type Xy = { x: number; y: number };
export type Positions = Record<string, Xy>;
export type Json = Record<string, unknown>;

export interface Step {
  id: string;
  uses: string;
  with?: Json;
  inputs?: Record<string, string>;
  target?: { provider: string; options?: Json };
  [more: string]: unknown;
}

export interface SpecDoc {
  apiVersion: string;
  kind: "Pipeline" | "MetaPipeline";
  metadata: { name: string; version?: string; description?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: {
    parameters?: Json;
    target?: { provider: string; options?: Json };
    inputs?: Record<string, { type?: string; description?: string; optional?: boolean }>;
    steps: Step[];
    outputs?: Record<string, string>;
    [more: string]: unknown;
  };
  [more: string]: unknown;
}

export interface GraphState {
  doc: SpecDoc;
  pos: Positions;
}

/** A change of the graph: its name (shown by undo/redo) and what it does. */
export interface Command {
  label: string;
  run: (s: GraphState) => GraphState;
}

/** The node id of the pipeline's own inputs (never a step id: step ids are DNS names). */
export const INPUTS_NODE = "__inputs";

export function emptyDoc(kind: Kind): SpecDoc {
  return {
    apiVersion: "mlops-nocode/v1",
    kind: kind === "metapipeline" ? "MetaPipeline" : "Pipeline",
    metadata: { name: `new-${kind}`, version: "0.1.0", description: "" },
    spec: { parameters: { type: "object", additionalProperties: false, properties: {} }, steps: [], outputs: {} },
  };
}

/** The document as a spec (optional empty sections left out so the YAML stays short). */
export function specOf(doc: SpecDoc): SpecDoc {
  const spec = { ...doc.spec };
  if (spec.outputs && !Object.keys(spec.outputs).length) delete spec.outputs;
  if (spec.inputs && !Object.keys(spec.inputs).length) delete spec.inputs;
  return { ...doc, spec };
}

const setSteps = (s: GraphState, steps: Step[]): GraphState => ({ ...s, doc: { ...s.doc, spec: { ...s.doc.spec, steps } } });

/** A step id not yet taken, from a catalogue name (`sklearn-dataset` → `sklearn-dataset`, `-2`, ...). */
export function freeId(steps: Step[], base: string): string {
  const clean = base.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 58) || "step";
  const taken = new Set(steps.map((s) => s.id));
  if (!taken.has(clean)) return clean;
  for (let i = 2; ; i++) if (!taken.has(`${clean}-${i}`)) return `${clean}-${i}`;
}

export const addStep = (step: Step, at: Xy): Command => ({
  label: `add ${step.id}`,
  run: (s) => ({ ...setSteps(s, [...s.doc.spec.steps, step]), pos: { ...s.pos, [step.id]: at } }),
});

export const moveNodes = (moved: Positions, label = "move"): Command => ({
  label,
  run: (s) => ({ ...s, pos: { ...s.pos, ...moved } }),
});

/** Connect `source` (STEP.OUTPUT or inputs.NAME) to input `input` of step `target` (replacing its source). */
export const connect = (source: string, target: string, input: string): Command => ({
  label: `connect ${source} → ${target}.${input}`,
  run: (s) =>
    setSteps(
      s,
      s.doc.spec.steps.map((st) => (st.id === target ? { ...st, inputs: { ...st.inputs, [input]: source } } : st)),
    ),
});

/** Remove steps (with every connection from them) and connections (`target.input` keys). */
export const remove = (stepIds: string[], connections: { target: string; input: string }[]): Command => ({
  label: stepIds.length ? `delete ${stepIds.join(", ")}` : "delete connection",
  run: (s) => {
    const gone = new Set(stepIds);
    const cut = new Set(connections.map((c) => `${c.target}\u0000${c.input}`));
    const steps = s.doc.spec.steps
      .filter((st) => !gone.has(st.id))
      .map((st) => {
        const inputs = Object.fromEntries(
          Object.entries(st.inputs ?? {}).filter(
            ([name, src]) => !gone.has(src.split(".")[0]) && !cut.has(`${st.id}\u0000${name}`),
          ),
        );
        const deps = Array.isArray(st.depends_on) ? (st.depends_on as string[]).filter((d) => !gone.has(d)) : undefined;
        const next: Step = { ...st, inputs };
        if (!Object.keys(inputs).length) delete next.inputs;
        if (deps !== undefined) next.depends_on = deps;
        return next;
      });
    const outputs = Object.fromEntries(
      Object.entries(s.doc.spec.outputs ?? {}).filter(([, src]) => !gone.has(src.split(".")[0])),
    );
    const pos = { ...s.pos };
    for (const id of gone) delete pos[id];
    const next = setSteps(s, steps);
    return { ...next, pos, doc: { ...next.doc, spec: { ...next.doc.spec, outputs } } };
  },
});

/** Change one step's fields (`with`, `uses`, `target`); a key set to undefined is removed. */
export const updateStep = (id: string, patch: Partial<Step>, label = `edit ${id}`): Command => ({
  label,
  run: (s) =>
    setSteps(
      s,
      s.doc.spec.steps.map((st) => {
        if (st.id !== id) return st;
        const next: Step = { ...st, ...patch };
        for (const [k, v] of Object.entries(patch)) if (v === undefined) delete next[k];
        return next;
      }),
    ),
});

/** Rename a step, and every connection and output that names it. */
export const renameStep = (from: string, to: string): Command => ({
  label: `rename ${from} → ${to}`,
  run: (s) => {
    const re = (src: string) => (src.split(".")[0] === from ? to + src.slice(from.length) : src);
    const steps = s.doc.spec.steps.map((st) => {
      const inputs = st.inputs && Object.fromEntries(Object.entries(st.inputs).map(([k, v]) => [k, re(v)]));
      const deps = Array.isArray(st.depends_on) ? (st.depends_on as string[]).map((d) => (d === from ? to : d)) : undefined;
      const next: Step = { ...st, id: st.id === from ? to : st.id };
      if (inputs) next.inputs = inputs;
      if (deps) next.depends_on = deps;
      return next;
    });
    const outputs = Object.fromEntries(Object.entries(s.doc.spec.outputs ?? {}).map(([k, v]) => [k, re(v)]));
    const pos = { ...s.pos };
    if (pos[from]) {
      pos[to] = pos[from];
      delete pos[from];
    }
    const next = setSteps(s, steps);
    return { pos, doc: { ...next.doc, spec: { ...next.doc.spec, outputs } } };
  },
});

/** Replace parts of the document outside the steps (metadata, parameters, outputs). */
export const editDoc = (label: string, change: (d: SpecDoc) => SpecDoc): Command => ({
  label,
  run: (s) => ({ ...s, doc: change(s.doc) }),
});

/** Replace the whole document (the YAML view's edit): positions kept for the steps that stay. */
export const replaceDoc = (doc: SpecDoc, placeNew: (id: string, i: number) => Xy): Command => ({
  label: "edit YAML",
  run: (s) => {
    const pos: Positions = {};
    doc.spec.steps.forEach((st, i) => (pos[st.id] = s.pos[st.id] ?? placeNew(st.id, i)));
    if (s.pos[INPUTS_NODE]) pos[INPUTS_NODE] = s.pos[INPUTS_NODE];
    return { doc, pos };
  },
});

/** The next version: a patch, minor or major bump of `version` (pre-release and build dropped). */
export function bump(version: string, part: "patch" | "minor" | "major"): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return "0.1.0";
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (part === "major") return `${a + 1}.0.0`;
  if (part === "minor") return `${a}.${b + 1}.0`;
  return `${a}.${b}.${c + 1}`;
}

/** The highest of semver versions (numeric comparison of MAJOR.MINOR.PATCH). */
export function highest(versions: string[]): string | undefined {
  const key = (v: string) => (/^(\d+)\.(\d+)\.(\d+)/.exec(v) ?? [0, 0, 0, 0]).slice(1).map(Number);
  return [...versions].sort((x, y) => {
    const [a, b] = [key(x), key(y)];
    return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  }).pop();
}
