// The builder's editing screen: palette, canvas, side panel or YAML, toolbar, breadcrumbs into nested graphs.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { useReactFlow } from "@xyflow/react";
import { api, type Entry } from "../api";
import { Problems } from "../components";
import { layout } from "../graph/layout";
import LaunchDialog from "../launch/LaunchDialog";
import type { Loaded } from "./Builder";
import { keepPositions, quickLayout } from "./positions";
import Canvas from "./Canvas";
import { INPUTS_NODE, addStep, renameStep, freeId, moveNodes, remove, replaceDoc, specOf, type GraphState, type SpecDoc, type Xy } from "./doc";
import { entryInfo, splitRef, type EntryInfo } from "./entries";
import { useHistory } from "./history";
import Palette from "./Palette";
import PipelinePanel from "./PipelinePanel";
import SaveDialog from "./SaveDialog";
import StepPanel from "./StepPanel";
import { NODE_WIDTH, nodeHeight } from "./StepNode";
import { useValidation, type Located } from "./validation";
import YamlPane from "./YamlPane";

interface Nested {
  label: string;
  uses: string;
  state: GraphState;
}

const isEditable = (t: EventTarget | null) =>
  t instanceof HTMLElement && !!t.closest("input, textarea, select, [contenteditable], .code-editor, [role=dialog]");

export default function Editor({ loaded }: { loaded: Loaded }) {
  const { kind } = loaded;
  const navigate = useNavigate();
  const flow = useReactFlow();
  const history = useHistory(loaded.state);
  const { run, undo, redo } = history;
  const [infos, setInfos] = useState<Record<string, EntryInfo | string>>(loaded.infos);
  const pending = useRef(new Set<string>(Object.keys(loaded.infos)));
  const [entries, setEntries] = useState<Entry[]>([]);
  const [secrets, setSecrets] = useState<string[]>([]);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [chosen, setSelected] = useState<Set<string>>(new Set());
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const [trail, setTrail] = useState<Nested[]>([]);
  const [showYaml, setShowYaml] = useState(false);
  const [dialog, setDialog] = useState<"save" | "launch" | null>(null);
  const [busy, setBusy] = useState("");
  const savedDoc = useRef(loaded.state.doc);

  const nested = trail[trail.length - 1];
  const view = nested?.state ?? history.state;
  const doc = history.state.doc;
  const readOnly = !!nested;
  // the selection never names a node that is gone (deleted, renamed, undone)
  const selected = useMemo(() => {
    const ids = new Set(view.doc.spec.steps.map((s) => s.id));
    ids.add(INPUTS_NODE);
    const live = new Set([...chosen].filter((id) => ids.has(id)));
    return live.size === chosen.size ? chosen : live;
  }, [chosen, view.doc.spec.steps]);

  useEffect(() => {
    api.get<Entry[]>("/api/v1/catalogue").then(setEntries, setLoadError);
    api.get<{ name: string }[]>("/api/v1/secrets").then((s) => setSecrets(s.map((x) => x.name)), () => setSecrets([]));
  }, []);

  // the ports and parameters of everything the shown graph uses, read once per pinned ref
  useEffect(() => {
    for (const s of view.doc.spec.steps) {
      if (pending.current.has(s.uses)) continue;
      pending.current.add(s.uses);
      entryInfo(s.uses).then(
        (info) => setInfos((i) => ({ ...i, [s.uses]: info })),
        (e: unknown) => setInfos((i) => ({ ...i, [s.uses]: `cannot read ${s.uses}: ${e instanceof Error ? e.message : String(e)}` })),
      );
    }
  }, [view.doc.spec.steps]);

  const validation = useValidation(doc, !readOnly);
  const located = useMemo(() => (readOnly ? [] : validation.problems), [readOnly, validation.problems]);
  const byStep = useMemo(() => {
    const out: Record<string, string[]> = {};
    for (const p of located) if (p.step) (out[p.step] ??= []).push(p.problem.what);
    return out;
  }, [located]);

  const select = useCallback((nodes: Set<string>, edges: Set<string>) => {
    setSelected(nodes);
    setSelectedEdges(edges);
  }, []);

  const deleteSelection = useCallback(() => {
    if (readOnly) return;
    const steps = [...selected].filter((id) => id !== INPUTS_NODE);
    const connections = [...selectedEdges].map((e) => {
      const cut = e.lastIndexOf(".");
      return { target: e.slice(0, cut), input: e.slice(cut + 1) };
    });
    if (!steps.length && !connections.length) return;
    run(remove(steps, connections));
    select(new Set(), new Set());
  }, [readOnly, selected, selectedEdges, run, select]);

  const add = useCallback(
    (uses: string, at?: Xy) => {
      const where =
        at ??
        (() => {
          const r = document.querySelector(".canvas")?.getBoundingClientRect();
          const p = flow.screenToFlowPosition({ x: (r?.left ?? 0) + (r?.width ?? 400) / 2, y: (r?.top ?? 0) + (r?.height ?? 300) / 2 });
          return { x: p.x + (doc.spec.steps.length % 5) * 20, y: p.y + (doc.spec.steps.length % 5) * 20 };
        })();
      const id = freeId(doc.spec.steps, splitRef(uses).name);
      run(addStep({ id, uses }, where));
      select(new Set([id]), new Set());
    },
    [doc.spec.steps, flow, run, select],
  );

  const heightOf = useCallback(
    (id: string) => {
      const step = view.doc.spec.steps.find((s) => s.id === id);
      const info = step && infos[step.uses];
      if (typeof info === "object") return nodeHeight(Object.keys(info.inputs).length, Object.keys(info.outputs).length);
      if (id === INPUTS_NODE) return nodeHeight(0, Object.keys(view.doc.spec.inputs ?? {}).length);
      return 120;
    },
    [view.doc, infos],
  );

  /** Tidy up: lay out the selection (2 nodes or more; the others keep their places) or the whole graph. */
  const tidy = useCallback(async () => {
    const steps = doc.spec.steps;
    const all = [...(doc.spec.inputs && Object.keys(doc.spec.inputs).length ? [INPUTS_NODE] : []), ...steps.map((s) => s.id)];
    const ids = selected.size >= 2 ? all.filter((id) => selected.has(id)) : all;
    if (!ids.length) return;
    const inside = new Set(ids);
    const edges = steps.flatMap((s) =>
      Object.values(s.inputs ?? {})
        .map((src) => String(src).split(".")[0])
        .map((src) => (src === "inputs" ? INPUTS_NODE : src))
        .filter((src) => inside.has(src) && inside.has(s.id))
        .map((source) => ({ source, target: s.id })),
    );
    setBusy("laying out…");
    const started = performance.now();
    const laid = await layout(ids.map((id) => ({ id, width: NODE_WIDTH, height: heightOf(id) })), edges, "LR");
    setBusy("");
    if (selected.size >= 2) {
      const pos = history.state.pos;
      const minX = Math.min(...ids.map((id) => pos[id]?.x ?? 0));
      const minY = Math.min(...ids.map((id) => pos[id]?.y ?? 0));
      const lx = Math.min(...ids.map((id) => laid[id].x));
      const ly = Math.min(...ids.map((id) => laid[id].y));
      for (const id of ids) laid[id] = { x: laid[id].x - lx + minX, y: laid[id].y - ly + minY };
      run(moveNodes(laid, "tidy up the selection"));
    } else {
      run(moveNodes(laid, "tidy up"));
      // measured once drawn (the benchmark reads it): two frames, so the new positions are painted
      requestAnimationFrame(() => requestAnimationFrame(() => performance.measure("builder:tidy-up", { start: started })));
      setTimeout(() => flow.fitView({ padding: 0.15, maxZoom: 1.2 }), 50);
    }
  }, [doc, selected, heightOf, history.state.pos, run, flow]);

  const openNested = useCallback(
    async (uses: string, id: string) => {
      try {
        const info = await entryInfo(uses);
        const pos = quickLayout(info.doc);
        setTrail((t) => [...t, { label: `${id} (${info.ref})`, uses, state: { doc: info.doc, pos } }]);
        select(new Set(), new Set());
      } catch (e) {
        setLoadError(e);
      }
    },
    [select],
  );

  // keyboard shortcuts act on the canvas only: never while typing in a field, the YAML editor or a dialog
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (dialog || isEditable(e.target)) return;
      const t = e.target as HTMLElement | null;
      if (t && t !== document.body && !t.closest(".canvas")) return;
      const mod = e.ctrlKey || e.metaKey;
      const key = e.key.toLowerCase();
      if (mod && key === "z" && !e.shiftKey) undo();
      else if (mod && (key === "y" || (key === "z" && e.shiftKey))) redo();
      else if (!mod && (e.key === "Delete" || e.key === "Backspace")) deleteSelection();
      else if (mod && key === "a") select(new Set(view.doc.spec.steps.map((s) => s.id)), new Set());
      else if (e.key === "Escape") select(new Set(), new Set());
      else if (mod && key === "s" && !readOnly) setDialog("save");
      else if (!mod && key === "l" && !readOnly) void tidy();
      else return;
      e.preventDefault();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [dialog, undo, redo, deleteSelection, select, view.doc.spec.steps, readOnly, tidy]);

  const applyYaml = useCallback(
    (next: SpecDoc) => run(replaceDoc(next, (_id, i) => ({ x: 40 + (i % 6) * 260, y: 400 + Math.floor(i / 6) * 160 }))),
    [run],
  );

  const selectedStep = selected.size === 1 ? view.doc.spec.steps.find((s) => selected.has(s.id)) : undefined;
  const dirty = doc !== savedDoc.current;
  const savedRef = loaded.version ? `${kind}/${doc.metadata.name}@${loaded.version}` : "";
  const params = Object.keys(((doc.spec.parameters ?? {}) as { properties?: object }).properties ?? {});
  const general: Located[] = located.filter((p) => !p.step);
  const status = readOnly
    ? "read-only"
    : !doc.spec.steps.length
      ? "empty"
      : validation.checking
        ? "checking…"
        : located.length
          ? `${located.length} problem${located.length > 1 ? "s" : ""}`
          : "valid";

  return (
    <div className="builder">
      <nav className="breadcrumbs" aria-label="breadcrumbs">
        <button className="crumb" onClick={() => setTrail([])} aria-current={!nested ? "page" : undefined}>
          {kind} {doc.metadata.name}
        </button>
        {trail.map((t, i) => (
          <span key={i}>
            {" › "}
            <button className="crumb" onClick={() => setTrail(trail.slice(0, i + 1))} aria-current={i === trail.length - 1 ? "page" : undefined}>
              {t.label}
            </button>
          </span>
        ))}
      </nav>
      <div className="toolbar builder-toolbar">
        <button onClick={undo} disabled={!history.canUndo || readOnly} title={history.undoLabel ? `undo ${history.undoLabel}` : ""}>Undo</button>
        <button onClick={redo} disabled={!history.canRedo || readOnly} title={history.redoLabel ? `redo ${history.redoLabel}` : ""}>Redo</button>
        <button onClick={() => void tidy()} disabled={readOnly}>{selected.size >= 2 ? "Tidy up selection" : "Tidy up"}</button>
        <button onClick={() => setShowYaml((v) => !v)} aria-pressed={showYaml}>YAML</button>
        <button className="primary" onClick={() => setDialog("save")} disabled={readOnly || !doc.spec.steps.length}>Save…</button>
        <button onClick={() => setDialog("launch")} disabled={readOnly || !doc.spec.steps.length}>Launch…</button>
        <span className={`validity validity-${status.split(" ")[0].replace("…", "")}`} data-testid="validity" role="status">{status}</span>
        {dirty && !readOnly && <span className="muted">unsaved changes</span>}
        {busy && <span className="muted">{busy}</span>}
        <span className="muted count">{view.doc.spec.steps.length} steps</span>
      </div>
      <Problems error={loadError} />
      <div className="builder-body">
        {!readOnly && <Palette kind={kind} entries={entries} self={doc.metadata.name} onAdd={(u) => add(u)} />}
        <Canvas
          state={view}
          infos={infos}
          problems={byStep}
          selected={selected}
          selectedEdges={selectedEdges}
          onSelect={select}
          run={run}
          onDropEntry={readOnly ? undefined : add}
          onOpen={openNested}
          readOnly={readOnly}
          fitKey={`${trail.length}:${nested?.uses ?? ""}`}
        />
        <div className="side">
          {showYaml ? (
            <YamlPane doc={view.doc} onApply={applyYaml} readOnly={readOnly} />
          ) : selectedStep ? (
            <StepPanel
              key={selectedStep.id}
              step={selectedStep}
              steps={view.doc.spec.steps}
              info={infos[selectedStep.uses]}
              kind={readOnly ? (view.doc.kind === "MetaPipeline" ? "metapipeline" : "pipeline") : kind}
              bindings={params}
              secrets={secrets}
              problems={located.filter((p) => p.step === selectedStep.id)}
              run={run}
              onRename={(from, to) => {
                run(renameStep(from, to));
                select(new Set([to]), new Set());
              }}
              readOnly={readOnly}
            />
          ) : (
            <PipelinePanel doc={view.doc} infos={infos} problems={general} run={run} readOnly={readOnly} isNew={!loaded.version} />
          )}
          {!readOnly && located.length > 0 && (
            <section className="problem-list" aria-label="problems">
              <h3>Problems</h3>
              <ul>
                {located.map((p, i) => (
                  <li key={i}>
                    {p.step ? (
                      <button className="link" onClick={() => select(new Set([p.step!]), new Set())}>{p.step}</button>
                    ) : null}{" "}
                    {p.problem.what}
                  </li>
                ))}
              </ul>
            </section>
          )}
        </div>
      </div>
      {dialog === "save" && (
        <SaveDialog
          doc={doc}
          versions={loaded.versions}
          base={loaded.version}
          onClose={() => setDialog(null)}
          onSaved={(s) => {
            keepPositions(s.ref, history.state.pos);
            setDialog(null);
            navigate(`/builder/${kind}/${encodeURIComponent(doc.metadata.name)}?version=${encodeURIComponent(s.version)}`, {
              state: { positions: history.state.pos },
            });
          }}
        />
      )}
      {dialog === "launch" && (
        <LaunchDialog pipeline={savedRef && !dirty ? savedRef : specOf(doc)} onClose={() => setDialog(null)} />
      )}
    </div>
  );
}
