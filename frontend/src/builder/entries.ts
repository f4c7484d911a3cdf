// What a step uses, read from the catalogue at its pinned version: typed ports and parameter schema.
// A pipeline's outputs are `STEP.OUTPUT` strings; their types come from what those steps use (resolved
// recursively, a few levels deep at most).
import { parse } from "yaml";
import { api, q, type EntryVersion } from "../api";
import type { Json, SpecDoc } from "./doc";

export interface PortInfo {
  type: string;
  description?: string;
  optional?: boolean;
}

export interface EntryInfo {
  ref: string;
  kind: string;
  name: string;
  version: string;
  versions: string[];
  description: string;
  inputs: Record<string, PortInfo>;
  outputs: Record<string, PortInfo>;
  parameters: Json;
  /** The parsed document (pipelines open into their own graph from it). */
  doc: SpecDoc;
}

const cache = new Map<string, Promise<EntryInfo>>();
const MAX_DEPTH = 8;

/** `playbook/x@1.0.0` → kind, name, version ("" when absent). */
export function splitRef(uses: string): { kind: string; name: string; version: string } {
  const [path, version = ""] = uses.split("@", 2);
  const [kind = "", name = ""] = path.split("/", 2);
  return { kind, name, version };
}

/** The catalogue entry `uses` names, with resolved port types (cached per ref). */
export function entryInfo(uses: string, depth = 0): Promise<EntryInfo> {
  let found = cache.get(uses);
  if (!found) {
    found = load(uses, depth);
    cache.set(uses, found);
    found.catch(() => cache.delete(uses));
  }
  return found;
}

async function load(uses: string, depth: number): Promise<EntryInfo> {
  const { kind, name, version } = splitRef(uses);
  const v = version ? `?version=${q(version)}` : "";
  const e = await api.get<EntryVersion>(`/api/v1/catalogue/${q(kind)}/${q(name)}${v}`);
  const doc = (parse(e.text) ?? {}) as SpecDoc;
  const spec = (doc.spec ?? {}) as Json;
  const ports = (p: unknown): Record<string, PortInfo> =>
    Object.fromEntries(
      Object.entries((p ?? {}) as Record<string, Json>).map(([k, port]) => [
        k,
        { type: String(port?.type ?? "any"), description: port?.description as string | undefined, optional: !!port?.optional },
      ]),
    );
  const inputs = ports(spec.inputs);
  let outputs: Record<string, PortInfo>;
  if (kind === "playbook") outputs = ports(spec.outputs);
  else outputs = await pipelineOutputs(doc, inputs, depth);
  return {
    ref: e.ref,
    kind,
    name,
    version: e.version,
    versions: e.versions,
    description: String(doc.metadata?.description ?? ""),
    inputs,
    outputs,
    parameters: (spec.parameters as Json) ?? { type: "object", properties: {} },
    doc,
  };
}

async function pipelineOutputs(doc: SpecDoc, inputs: Record<string, PortInfo>, depth: number) {
  const out: Record<string, PortInfo> = {};
  const steps = doc.spec?.steps ?? [];
  for (const [name, src] of Object.entries(doc.spec?.outputs ?? {})) {
    const [sid, port] = String(src).split(".", 2);
    let type = "any";
    if (sid === "inputs") type = inputs[port]?.type ?? "any";
    else {
      const step = steps.find((s) => s.id === sid);
      if (step && depth < MAX_DEPTH) {
        try {
          type = (await entryInfo(step.uses, depth + 1)).outputs[port]?.type ?? "any";
        } catch {
          type = "any";
        }
      }
    }
    out[name] = { type };
  }
  return out;
}

/** Why an output of type `from` cannot feed an input of type `to` ("" when it can): the compiler's rule,
 * same type or `any` on either side. */
export function incompatible(from: string, to: string): string {
  if (from === to || from === "any" || to === "any") return "";
  return `types differ: the output is ${from}, the input expects ${to} (connect an output of type ${to}, or any)`;
}
