// Test run of the draft on sample inputs: the gateway runs it as a one-step run (POST
// /api/v1/playbooks/try); the panel follows that run and shows its log, metrics and outputs.
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api, ApiError, q, type Problem, type Run, type RunEvent } from "../api";
import { Status } from "../components";
import ParamForm, { type JsonSchema } from "../forms/ParamForm";
import { FILE_TYPES, type Draft, toDoc } from "./draft";
import type { Routed } from "./problems";

interface Sample {
  text: string;
  filename: string;
  upload?: { name: string; base64: string };
  /** An output of an earlier run, read by the gateway from its artifact store. */
  run?: string;
  output?: string;
}
interface Artifact {
  name: string;
  type: string | null;
  available: boolean;
  filename: string | null;
  size: number | null;
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
/** Larger files are refused before they are read (the gateway's own bound, TRY_SAMPLE_MAX_BYTES, is
 * 256 KiB by default; a request body is at most 1 MiB, base64 adds a third). */
const MAX_UPLOAD = 512 * 1024;

function base64Of(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Parameter values typed as the schema says (a text field gives text). */
function coerce(schema: JsonSchema, values: Record<string, unknown>): Record<string, unknown> {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const t = props[k]?.type;
    if (v === "" || v === undefined) continue;
    if ((t === "integer" || t === "number") && typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) out[k] = Number(v);
    else if (t === "boolean" && (v === "true" || v === "false")) out[k] = v === "true";
    else out[k] = v;
  }
  return out;
}

export interface TryPanelProps {
  draft: Draft;
  /** Problems of a refused test run, routed by the page (the code's go near the editor). */
  onProblems: (problems: Problem[]) => void;
  routed: Routed;
}

export default function TryPanel({ draft, onProblems, routed }: TryPanelProps) {
  const [samples, setSamples] = useState<Record<string, Sample>>({});
  const [params, setParams] = useState<Record<string, unknown>>({});
  const [sampleErrors, setSampleErrors] = useState<Record<string, string>>({});
  const [run, setRun] = useState<Run | null>(null);
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [artifacts, setArtifacts] = useState<Artifact[]>([]);
  const [busy, setBusy] = useState(false);
  const live = useRef(0);

  useEffect(() => () => void (live.current += 1), []);

  const sample = (port: string, type: string): Sample =>
    samples[port] ?? { text: "", filename: type === "dataset" ? "sample.csv" : "sample.txt" };
  const setSample = (port: string, type: string, patch: Partial<Sample>) =>
    setSamples({ ...samples, [port]: { ...sample(port, type), ...patch } });

  const follow = async (id: string, token: number) => {
    let after = 0;
    for (;;) {
      if (live.current !== token) return;
      const [r, more] = await Promise.all([
        api.get<Run>(`/api/v1/runs/${q(id)}`),
        api.get<RunEvent[]>(`/api/v1/runs/${q(id)}/events?after=${after}&limit=1000`),
      ]);
      if (live.current !== token) return;
      if (more.length) {
        after = more[more.length - 1].seq;
        setEvents((old) => [...old, ...more]);
      }
      setRun(r);
      if (TERMINAL.has(r.status) && !more.length) {
        setArtifacts(await api.get<Artifact[]>(`/api/v1/runs/${q(id)}/artifacts`));
        return;
      }
      await new Promise((done) => setTimeout(done, more.length ? 50 : 400));
    }
  };

  const start = async () => {
    const errors: Record<string, string> = {};
    const inputs: Record<string, Record<string, unknown>> = {};
    for (const p of draft.inputs.filter((p) => p.name)) {
      const s = sample(p.name, p.type);
      if (s.run?.trim()) {
        inputs[p.name] = { run: s.run.trim(), output: (s.output ?? "").trim() };
      } else if (FILE_TYPES.has(p.type)) {
        inputs[p.name] = s.upload ? { filename: s.upload.name, base64: s.upload.base64 } : { filename: s.filename, text: s.text };
      } else if (p.type === "text") {
        inputs[p.name] = { value: s.text };
      } else {
        try {
          inputs[p.name] = { value: JSON.parse(s.text) };
        } catch {
          if (p.type === "any") inputs[p.name] = { value: s.text };
          else errors[p.name] = `not JSON: write a ${p.type} value such as {"a": 1}`;
        }
      }
    }
    setSampleErrors(errors);
    if (Object.keys(errors).length) return;
    const token = ++live.current;
    setBusy(true);
    setRun(null);
    setEvents([]);
    setArtifacts([]);
    onProblems([]);
    try {
      const r = await api.post<Run>("/api/v1/playbooks/try", { playbook: toDoc(draft), parameters: coerce(draft.parameters, params), inputs });
      setRun(r);
      await follow(r.id, token);
    } catch (e) {
      onProblems(e instanceof ApiError ? e.problems : [{ what: String(e), where: "", fix: "" }]);
    } finally {
      if (live.current === token) setBusy(false);
    }
  };

  const logs = events.filter((e) => e.type === "log" && e.step === "step").map((e) => String(e.data.line ?? ""));
  const failures = events.filter((e) => e.type === "step.failed").map((e) => `${e.step}: ${String(e.data.error ?? "failed")}`);
  const metrics = events.filter((e) => e.type === "metric");
  const outputs = run?.outputs ?? {};
  const paramProblems = Object.fromEntries(
    routed.parameters.map((p) => [/with\.([A-Za-z0-9_]+)/.exec(p.where)?.[1] ?? "", p.what] as const).filter(([k]) => k),
  );

  return (
    <section className="try-panel" aria-labelledby="try-title">
      <h2 id="try-title">Test run</h2>
      {draft.inputs.filter((p) => p.name).map((p) => {
        const s = sample(p.name, p.type);
        const problem = sampleErrors[p.name] ?? routed.samples[p.name]?.map((x) => x.what).join("; ");
        return (
          <div className="sample" key={p.name} data-testid={`sample-${p.name}`}>
            <label htmlFor={`sample-${p.name}`}>
              Sample <code>{p.name}</code> <span className="type">{p.type}</span>
            </label>
            {FILE_TYPES.has(p.type) && (
              <div className="sample-file">
                <label>
                  File name
                  <input value={s.upload?.name ?? s.filename} disabled={!!s.upload} onChange={(e) => setSample(p.name, p.type, { filename: e.target.value })} />
                </label>
                <label>
                  or upload
                  <input
                    type="file"
                    onChange={async (e) => {
                      const f = e.target.files?.[0];
                      if (f && f.size > MAX_UPLOAD) {
                        setSampleErrors({ ...sampleErrors, [p.name]: `${f.name} is ${f.size} bytes: a sample is small (at most ${MAX_UPLOAD})` });
                        e.target.value = "";
                        return;
                      }
                      setSample(p.name, p.type, { upload: f ? { name: f.name, base64: base64Of(await f.arrayBuffer()) } : undefined });
                    }}
                  />
                </label>
              </div>
            )}
            <textarea
              id={`sample-${p.name}`}
              rows={3}
              disabled={!!s.upload}
              placeholder={FILE_TYPES.has(p.type) ? "paste the file's text" : p.type === "text" ? "paste text" : "paste JSON"}
              value={s.text}
              aria-invalid={!!problem}
              onChange={(e) => setSample(p.name, p.type, { text: e.target.value })}
            />
            <details className="sample-run">
              <summary>or an output of an earlier run</summary>
              <label>
                Run id
                <input value={s.run ?? ""} onChange={(e) => setSample(p.name, p.type, { run: e.target.value })} />
              </label>
              <label>
                Output name
                <input value={s.output ?? ""} onChange={(e) => setSample(p.name, p.type, { output: e.target.value })} />
              </label>
            </details>
            {problem && <span className="field-problem" role="alert">{problem}</span>}
          </div>
        );
      })}
      {Object.keys((draft.parameters.properties ?? {}) as object).length > 0 && (
        <div className="try-params">
          <h3>Parameters</h3>
          <ParamForm schema={draft.parameters} value={params} onChange={setParams} problems={paramProblems} idPrefix="try" />
        </div>
      )}
      <div className="toolbar">
        <button type="button" className="primary" onClick={start} disabled={busy}>
          {busy ? "Running…" : "Run test"}
        </button>
        {run && (
          <span>
            <Status value={run.status} /> <Link to={`/runs/${q(run.id)}`}>run {run.id}</Link>
          </span>
        )}
      </div>
      {run && (
        <div className="try-results" data-testid="try-results">
          {run.details && run.status === "failed" && <p className="problem">{run.details}</p>}
          {failures.map((f, i) => <p className="problem" key={i}>{f}</p>)}
          <h3>Log</h3>
          <pre className="logs" aria-label="test run log">{logs.join("\n") || "No log lines yet."}</pre>
          {metrics.length > 0 && (
            <>
              <h3>Metrics</h3>
              <table aria-label="test run metrics">
                <tbody>
                  {metrics.map((m) => (
                    <tr key={m.seq}><td>{String(m.data.name)}</td><td>{String(m.data.value)}</td></tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          {TERMINAL.has(run.status) && (
            <>
              <h3>Outputs</h3>
              <ul className="try-outputs" aria-label="test run outputs">
                {draft.outputs.filter((o) => o.name).map((o) => {
                  const a = artifacts.find((x) => x.name === o.name);
                  return (
                    <li key={o.name} data-output={o.name}>
                      <code>{o.name}</code> <span className="type">{o.type}</span>{" "}
                      {!FILE_TYPES.has(o.type) && o.name in outputs && (
                        <pre className="value">{JSON.stringify(outputs[o.name], null, 2)}</pre>
                      )}
                      {a && a.available && a.filename ? (
                        <a href={`/api/v1/runs/${q(run.id)}/artifacts/${q(o.name)}`} download={a.filename}>
                          Download {FILE_TYPES.has(o.type) ? a.filename : `${o.name}.json`} ({a.size} bytes)
                        </a>
                      ) : (
                        !(o.name in outputs) && <span className="muted">none</span>
                      )}
                    </li>
                  );
                })}
              </ul>
            </>
          )}
        </div>
      )}
    </section>
  );
}
