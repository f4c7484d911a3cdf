// The playbook editor (/editor/new, /editor/:name): a Python step written in the browser — its name,
// ports and parameters built with forms, its code in CodeMirror (pre-filled with the step contract), a
// test run on sample inputs, and saving as a new catalogue version.
import { lazy, Suspense, useEffect, useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { parse } from "yaml";
import { api, ApiError, q, type EntryVersion, type Problem } from "../api";
import { Problems } from "../components";
import ParamForm from "../forms/ParamForm";
import SchemaBuilder from "../forms/SchemaBuilder";
import AssistantPanel from "./AssistantPanel";
import { emptyDraft, fromDoc, identifierProblem, nameProblem, nextPatch, template, toDoc, type Draft, type SpecDoc } from "./draft";
import Ports from "./Ports";
import { codeLine, noProblems, route, type Routed } from "./problems";
import TryPanel from "./TryPanel";
import "./editor.css";

const CodeEditor = lazy(() => import("../code/CodeEditor"));

interface Saved {
  ref: string;
  version?: string;
  commit?: string;
}

function ProblemList({ problems, label }: { problems: Problem[]; label: string }) {
  if (!problems.length) return null;
  return (
    <ul className="located-problems" role="alert" aria-label={label}>
      {problems.map((p, i) => (
        <li key={i} className="problem">
          {codeLine(p) !== null && <strong>Line {codeLine(p)}: </strong>}
          {p.what}
          {p.fix && <div className="fix">Fix: {p.fix}</div>}
        </li>
      ))}
    </ul>
  );
}

export default function PlaybookEditor() {
  const { name: editing } = useParams();
  const [draft, setDraft] = useState<Draft>(() => {
    const d = emptyDraft();
    return { ...d, code: template(d) };
  });
  const [codeEdited, setCodeEdited] = useState(false);
  // What the code editor is given: set only by changes from outside it (template, load, reset), each a
  // new editor; the user's typing goes to the draft alone, so a render lagging behind the keys never
  // writes an older text back into the editor.
  const [shown, setShown] = useState(() => ({ text: draft.code, rev: 0 }));
  const setCode = (text: string) => {
    setDraft((d) => ({ ...d, code: text }));
    setShown((s) => ({ text, rev: s.rev + 1 }));
  };
  const [base, setBase] = useState<string | undefined>(undefined);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [nameTouched, setNameTouched] = useState(false);
  const [routed, setRouted] = useState<Routed>(noProblems());
  const [message, setMessage] = useState("");
  const [saved, setSaved] = useState<Saved | null>(null);
  const [saving, setSaving] = useState(false);
  const [preview, setPreview] = useState<Record<string, unknown>>({});

  useEffect(() => {
    if (!editing) return;
    api.get<EntryVersion>(`/api/v1/catalogue/playbook/${q(editing)}`).then(
      (entry) => {
        const loaded = fromDoc(parse(entry.text) ?? {});
        if (!loaded) {
          setLoadError(
            new ApiError(0, [
              {
                what: `${entry.ref} runs an installed module, not code of its own: this editor edits playbooks that carry their code`,
                where: "python.entrypoint",
                fix: "edit its YAML, or write a new playbook here",
              },
            ]),
          );
          return;
        }
        setBase(entry.version);
        setDraft({ ...loaded, version: nextPatch(entry.version) });
        setShown((s) => ({ text: loaded.code, rev: s.rev + 1 }));
        setCodeEdited(true);
      },
      setLoadError,
    );
  }, [editing]);

  const generated = useMemo(() => template(draft), [draft]);
  useEffect(() => {
    if (!codeEdited && draft.code !== generated) setCode(generated);
  }, [generated, codeEdited, draft.code]);

  const update = (patch: Partial<Draft>) => setDraft((d) => ({ ...d, ...patch }));
  const paramNames = Object.keys((draft.parameters.properties ?? {}) as object);
  const argNames = [...draft.inputs.map((p) => p.name), ...paramNames];
  const local = {
    name: nameProblem(draft.name),
    inputs: Object.fromEntries(draft.inputs.map((p, i) => [i, identifierProblem(p.name, argNames)]).filter(([, w]) => w)),
    outputs: Object.fromEntries(
      draft.outputs.map((p, i) => [i, identifierProblem(p.name, draft.outputs.map((o) => o.name))]).filter(([, w]) => w),
    ),
    params: Object.fromEntries(paramNames.map((n, i) => [i, identifierProblem(n, argNames)]).filter(([, w]) => w)),
  };
  const portProblems = (kind: "inputs" | "outputs") =>
    Object.fromEntries(
      draft[kind].map((p, i) => [i, local[kind][i] || (routed[kind][p.name] ?? []).map((x) => x.what).join("; ")]).filter(([, w]) => w),
    );
  const nameShown = (nameTouched && local.name) || routed.name.map((p) => p.what).join("; ");
  const blocked = !!local.name || Object.keys(local.inputs).length + Object.keys(local.outputs).length + Object.keys(local.params).length > 0;

  const save = async () => {
    setNameTouched(true);
    if (blocked) {
      setRouted({ ...noProblems(), other: [{ what: "fix the fields marked above before saving", where: "form", fix: "" }] });
      return;
    }
    setSaving(true);
    setSaved(null);
    setRouted(noProblems());
    try {
      const answer = await api.post<{ saved: Saved[] }>("/api/v1/catalogue", {
        spec: toDoc(draft),
        message: message.trim() || `save playbook/${draft.name}@${draft.version}`,
        ...(base ? { base } : {}),
      });
      setSaved(answer.saved[0] ?? { ref: `playbook/${draft.name}@${draft.version}` });
      setBase(draft.version);
      setCodeEdited(true);
      update({ version: nextPatch(draft.version) });
      setMessage("");
    } catch (e) {
      setRouted(route(e instanceof ApiError ? e.problems : [{ what: String(e), where: "", fix: "" }]));
    } finally {
      setSaving(false);
    }
  };

  const takeDraft = (doc: SpecDoc) => {
    const loaded = fromDoc(doc);
    if (!loaded) return;
    setDraft(editing ? { ...loaded, name: editing } : loaded);
    setShown((s) => ({ text: loaded.code, rev: s.rev + 1 }));
    setCodeEdited(true);
    setNameTouched(true);
  };

  if (loadError) return <Problems error={loadError} />;
  return (
    <div className="playbook-editor">
      <h1>{editing ? <>Edit playbook <code>{editing}</code></> : "New playbook"}</h1>
      <AssistantPanel onDraft={takeDraft} />
      <div className="editor-columns">
        <div className="editor-form">
          <section aria-labelledby="identity-title">
            <h2 id="identity-title">Playbook</h2>
            <label>
              Name
              <input
                value={draft.name}
                disabled={!!editing}
                aria-invalid={!!nameShown}
                aria-describedby={nameShown ? "name-problem" : undefined}
                onChange={(e) => {
                  setNameTouched(true);
                  update({ name: e.target.value });
                }}
                placeholder="clean-text"
              />
            </label>
            {nameShown && <span className="field-problem" id="name-problem" role="alert">{nameShown}</span>}
            <label>
              Version
              <input value={draft.version} onChange={(e) => update({ version: e.target.value })} />
            </label>
            <label>
              Description
              <textarea value={draft.description} rows={2} onChange={(e) => update({ description: e.target.value })} />
            </label>
            <fieldset className="labels">
              <legend>Labels</legend>
              {draft.labels.map((l, i) => (
                <div key={i} className="label-row">
                  <input aria-label={`label ${i + 1} key`} value={l.key} onChange={(e) => update({ labels: draft.labels.map((x, j) => (j === i ? { ...x, key: e.target.value } : x)) })} />
                  <input aria-label={`label ${i + 1} value`} value={l.value} onChange={(e) => update({ labels: draft.labels.map((x, j) => (j === i ? { ...x, value: e.target.value } : x)) })} />
                  <button type="button" aria-label={`Remove label ${l.key || i + 1}`} onClick={() => update({ labels: draft.labels.filter((_, j) => j !== i) })}>Remove</button>
                </div>
              ))}
              <button type="button" onClick={() => update({ labels: [...draft.labels, { key: "", value: "" }] })}>Add label</button>
            </fieldset>
          </section>
          <Ports kind="input" ports={draft.inputs} onChange={(inputs) => update({ inputs })} problems={portProblems("inputs")} />
          <Ports kind="output" ports={draft.outputs} onChange={(outputs) => update({ outputs })} problems={portProblems("outputs")} />
          <section aria-labelledby="params-title">
            <h3 id="params-title">Parameters</h3>
            {Object.keys(local.params).length > 0 && (
              <ul className="located-problems" role="alert" aria-label="parameter name problems">
                {Object.entries(local.params).map(([i, what]) => (
                  <li key={i} className="problem">
                    <strong>Parameter {Number(i) + 1} ({paramNames[Number(i)]}): </strong>
                    {String(what)}
                  </li>
                ))}
              </ul>
            )}
            <ProblemList problems={routed.parameters} label="parameter problems" />
            <SchemaBuilder schema={draft.parameters} onChange={(parameters) => update({ parameters })} idPrefix="playbook-params" />
            {paramNames.length > 0 && (
              <div className="param-preview" aria-label="parameter form preview">
                <h4>Preview</h4>
                <ParamForm schema={draft.parameters} value={preview} onChange={setPreview} idPrefix="preview" />
              </div>
            )}
          </section>
        </div>
        <div className="editor-code">
          <section aria-labelledby="code-title">
            <h2 id="code-title">Code</h2>
            <p className="muted">
              Python, function <code>{draft.entrypoint}</code>.{" "}
              {codeEdited ? (
                <button type="button" onClick={() => { setCodeEdited(false); setCode(template(draft)); }}>Reset to template</button>
              ) : (
                "The template follows the ports and parameters until you edit it."
              )}
            </p>
            <Suspense fallback={<p className="loading">Loading the editor…</p>}>
              <CodeEditor
                key={shown.rev}
                language="python"
                ariaLabel="step code"
                height="26em"
                value={shown.text}
                onChange={(text) => {
                  update({ code: text });
                  if (text !== template(draft)) setCodeEdited(true);
                }}
              />
            </Suspense>
            <ProblemList problems={routed.code} label="code problems" />
          </section>
          <TryPanel draft={draft} routed={routed} onProblems={(ps) => setRouted(route(ps))} />
        </div>
      </div>
      <section className="save" aria-labelledby="save-title">
        <h2 id="save-title">Save</h2>
        <div className="toolbar">
          <label>
            Commit message
            <input value={message} placeholder={`save playbook/${draft.name || "NAME"}@${draft.version}`} onChange={(e) => setMessage(e.target.value)} />
          </label>
          <button type="button" className="primary" disabled={saving} onClick={save}>
            Save version {draft.version}
          </button>
        </div>
        <ProblemList problems={routed.other} label="problems" />
        {saved && (
          <p className="ok" role="status">
            Saved <code>{saved.ref}</code>: <Link to={`/catalogue/playbook/${q(draft.name)}`}>open it in the catalogue</Link>
          </p>
        )}
      </section>
    </div>
  );
}
