// The playbook being written in the editor: its form state, the spec document it becomes, the step
// template its code starts from, and the checks done as the user types (the server checks again).
import type { JsonSchema } from "../forms/ParamForm";

export const PORT_TYPES = ["dataset", "model", "metrics", "text", "json", "file", "directory", "endpoint", "infra", "any"] as const;
export type PortType = (typeof PORT_TYPES)[number];
/** Port types whose value is a file or folder (the step receives a path, returns a path). */
export const FILE_TYPES = new Set<string>(["dataset", "model", "file", "directory"]);

export interface PortDraft {
  name: string;
  type: PortType;
  description: string;
}

export interface Draft {
  name: string;
  version: string;
  description: string;
  labels: { key: string; value: string }[];
  inputs: PortDraft[];
  outputs: PortDraft[];
  parameters: JsonSchema;
  code: string;
  entrypoint: string;
}

export const emptyDraft = (): Draft => ({
  name: "",
  version: "0.1.0",
  description: "",
  labels: [],
  inputs: [],
  outputs: [],
  parameters: { type: "object", properties: {} },
  code: "",
  entrypoint: "main",
});

const PY_KEYWORDS = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for from " +
    "global if import in is lambda nonlocal not or pass raise return try while with yield ctx").split(" "),
);

/** Why `name` is not a DNS-1123 label (a playbook's name), or "" when it is one. */
export function nameProblem(name: string): string {
  if (!name) return "a name is required";
  if (name.length > 63) return "at most 63 characters";
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
    return "lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. clean-text)";
  return "";
}

/** Why `name` cannot name a port or parameter (it is a keyword argument of the step function). */
export function identifierProblem(name: string, taken: string[]): string {
  if (!name) return "a name is required";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return "letters, digits and '_', not starting with a digit (a Python argument name)";
  if (PY_KEYWORDS.has(name)) return `'${name}' is reserved in Python or by the step contract`;
  if (taken.filter((t) => t === name).length > 1) return `'${name}' is used twice (ports and parameters share one namespace)`;
  return "";
}

export function nextPatch(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : "0.1.0";
}

function pyValue(type: string, input: string | undefined): string {
  switch (type) {
    case "text":
      return input ? `f"{len(str(${input}_value))} characters"` : `"done"`;
    case "metrics":
      return `{"score": 1.0}`;
    default:
      return "{}";
  }
}

/** The step's source code, generated from its ports and parameters: the step contract, ready to edit. */
export function template(d: Draft): string {
  const props = (d.parameters.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((d.parameters.required as string[] | undefined) ?? []);
  const args = [
    "ctx",
    ...d.inputs.map((p) => p.name).filter(Boolean),
    ...Object.entries(props).map(([n, s]) =>
      required.has(n) || s.default === undefined ? n : `${n}=${JSON.stringify(s.default).replace(/^true$/, "True").replace(/^false$/, "False").replace(/^null$/, "None")}`,
    ),
  ];
  const ordered = [...args.filter((a) => !a.includes("=")), ...args.filter((a) => a.includes("="))];
  const lines: string[] = [
    ...(d.description || "What this step does.").split(/\r\n|\r|\n/).map((l) => `# ${l}`.trimEnd()),  // a comment: no text breaks out of it
    "",
    "import json",
    "",
    "",
    `def ${d.entrypoint || "main"}(${ordered.join(", ")}):`,
    '    """The step contract: each input arrives as a keyword argument holding a path (a file or folder,',
    "    or a JSON file with the value of a text/json/metrics input), each parameter as its value.",
    "    Return a dict with one entry per output: a value (text, json, metrics), or the path of a file",
    "    or folder written under ctx.output_dir (dataset, model, file, directory).",
    '    """',
    `    ctx.log.info("step started")  # a line in the run's log`,
  ];
  for (const p of d.inputs.filter((p) => p.name)) {
    if (FILE_TYPES.has(p.type)) {
      lines.push(`    # ${p.name}: the path of a ${p.type === "directory" ? "folder" : "file"} (${p.type})`);
      if (p.type !== "directory") lines.push(`    ctx.log.info("${p.name}: %d bytes", len(open(${p.name}, "rb").read()))`);
    } else {
      lines.push(`    with open(${p.name}) as f:  # a ${p.type} input: the path of a JSON file holding its value`, `        ${p.name}_value = json.load(f)`);
    }
  }
  for (const n of Object.keys(props)) lines.push(`    # ${n}: a parameter`);
  lines.push(`    ctx.metric("example", 1.0)  # a number shown as a metric of the run`);
  const returned: string[] = [];
  for (const p of d.outputs.filter((p) => p.name)) {
    if (FILE_TYPES.has(p.type)) {
      if (p.type === "directory") {
        lines.push(`    ${p.name}_dir = ctx.output_dir / "${p.name}"`, `    ${p.name}_dir.mkdir()`);
        returned.push(`"${p.name}": str(${p.name}_dir)`);
      } else {
        lines.push(`    ${p.name}_path = ctx.output_dir / "${p.name}.txt"`, `    ${p.name}_path.write_text("...")`);
        returned.push(`"${p.name}": str(${p.name}_path)`);
      }
    } else {
      returned.push(`"${p.name}": ${pyValue(p.type, d.inputs.find((i) => i.name && !FILE_TYPES.has(i.type))?.name)}`);
    }
  }
  lines.push(`    return {${returned.join(", ")}}`, "");
  return lines.join("\n");
}

function ports(list: PortDraft[]): Record<string, { type: string; description?: string }> {
  return Object.fromEntries(
    list.filter((p) => p.name).map((p) => [p.name, p.description ? { type: p.type, description: p.description } : { type: p.type }]),
  );
}

/** The Playbook document the draft describes (what is saved and test-run). */
export function toDoc(d: Draft): Record<string, unknown> {
  const labels = Object.fromEntries(d.labels.filter((l) => l.key).map((l) => [l.key, l.value]));
  return {
    apiVersion: "mlops-nocode/v1",
    kind: "Playbook",
    metadata: { name: d.name, version: d.version, description: d.description, ...(Object.keys(labels).length ? { labels } : {}) },
    spec: {
      runtime: "python",
      python: { code: d.code, entrypoint: d.entrypoint || "main" },
      inputs: ports(d.inputs),
      outputs: ports(d.outputs),
      parameters: d.parameters,
    },
  };
}

export interface SpecDoc {
  metadata?: { name?: string; version?: string; description?: string; labels?: Record<string, string> };
  spec?: {
    python?: { code?: string; entrypoint?: string };
    inputs?: Record<string, { type?: string; description?: string }>;
    outputs?: Record<string, { type?: string; description?: string }>;
    parameters?: JsonSchema;
  };
}

type SpecPorts = Record<string, { type?: string; description?: string }> | undefined;

function portsOf(ports: SpecPorts): PortDraft[] {
  return Object.entries(ports ?? {}).map(([name, p]) => ({
    name,
    type: (PORT_TYPES as readonly string[]).includes(p?.type ?? "") ? (p!.type as PortType) : "any",
    description: p?.description ?? "",
  }));
}

/** A saved playbook (parsed YAML) back into the form; null when it carries no code of its own. */
export function fromDoc(doc: SpecDoc): Draft | null {
  const py = doc.spec?.python;
  if (!py || typeof py.code !== "string") return null;
  return {
    name: doc.metadata?.name ?? "",
    version: doc.metadata?.version ?? "0.1.0",
    description: doc.metadata?.description ?? "",
    labels: Object.entries(doc.metadata?.labels ?? {}).map(([key, value]) => ({ key, value: String(value) })),
    inputs: portsOf(doc.spec?.inputs),
    outputs: portsOf(doc.spec?.outputs),
    parameters: doc.spec?.parameters ?? { type: "object", properties: {} },
    code: py.code,
    entrypoint: py.entrypoint || "main",
  };
}
