// The visual pipeline builder: /builder/new/:kind and /builder/:kind/:name?version=.
import { useEffect, useState } from "react";
import { useLocation, useParams, useSearchParams } from "react-router";
import { ReactFlowProvider } from "@xyflow/react";
import { parse } from "yaml";
import { api, q, type EntryVersion } from "../api";
import { Problems } from "../components";
import { emptyDoc, type GraphState, type Kind, type Positions, type SpecDoc } from "./doc";
import { entryInfo, type EntryInfo } from "./entries";
import { keptPositions, quickLayout } from "./positions";
import Editor from "./Editor";
import "./builder.css";

export interface Loaded {
  kind: Kind;
  state: GraphState;
  /** Versions of the entry in the catalogue (empty: a new one). */
  versions: string[];
  /** The version loaded (absent: new). */
  version?: string;
  /** What its steps use, read before the first drawing (so the nodes are drawn once, with their ports). */
  infos: Record<string, EntryInfo | string>;
}

async function readAll(doc: SpecDoc): Promise<Record<string, EntryInfo | string>> {
  const uses = [...new Set(doc.spec.steps.map((s) => s.uses))];
  const read = await Promise.allSettled(uses.map((u) => entryInfo(u)));
  return Object.fromEntries(
    read.map((r, i) => [uses[i], r.status === "fulfilled" ? r.value : `cannot read ${uses[i]}: ${String(r.reason)}`]),
  );
}

const KINDS: Kind[] = ["pipeline", "metapipeline"];
export default function Builder() {
  const { kind = "", name } = useParams();
  const [params] = useSearchParams();
  const version = params.get("version") ?? "";
  const location = useLocation();
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    setLoaded(null);
    setError(null);
    const load = async (): Promise<Loaded> => {
      if (!KINDS.includes(kind as Kind)) {
        throw new Error(`the builder edits pipelines and metapipelines, not ${kind || "nothing"}: open /builder/new/pipeline`);
      }
      const k = kind as Kind;
      if (!name) return { kind: k, state: { doc: emptyDoc(k), pos: {} }, versions: [], infos: {} };
      const e = await api.get<EntryVersion>(`/api/v1/catalogue/${q(k)}/${q(name)}${version ? `?version=${q(version)}` : ""}`);
      const doc = parse(e.text) as SpecDoc;
      if (!doc?.spec || !Array.isArray(doc.spec.steps)) throw new Error(`${e.ref} has no steps to show`);
      const given = (location.state as { positions?: Positions } | null)?.positions;
      let pos = given ?? keptPositions(e.ref);
      if (!pos || doc.spec.steps.some((s) => !pos![s.id])) pos = quickLayout(doc);
      return { kind: k, state: { doc, pos }, versions: e.versions, version: e.version, infos: await readAll(doc) };
    };
    load().then(
      (l) => live && setLoaded(l),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
    // location.state is read once per address
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [kind, name, version]);

  if (error) return <div className="builder"><h1>Builder</h1><Problems error={error} /></div>;
  if (!loaded) return <div className="builder"><h1>Builder</h1><p className="loading">Loading…</p></div>;
  return (
    <ReactFlowProvider>
      <Editor key={`${kind}/${name ?? ""}@${loaded.version ?? ""}`} loaded={loaded} />
    </ReactFlowProvider>
  );
}
