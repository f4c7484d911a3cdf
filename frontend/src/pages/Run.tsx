import { useCallback, useEffect, useState } from "react";
import { useNavigate, useParams } from "react-router";
import { api, q, type Run, type RunEvent } from "../api";
import { Problems, Status, when } from "../components";

const STEP_STATUS: Record<string, string> = {
  "step.started": "running",
  "step.finished": "succeeded",
  "step.failed": "failed",
  "step.retrying": "retrying",
  "step.skipped": "skipped",
  "step.cancelled": "cancelled",
};
const LIVE = new Set(["queued", "running"]);

/** One run: its steps turning green live (the run's Server-Sent Events), step logs, cancel and retry. */
export default function RunPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const [run, setRun] = useState<Run | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [steps, setSteps] = useState<Record<string, string>>({});
  const [logs, setLogs] = useState<{ step: string | null; line: string; seq: number }[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [stream, setStream] = useState<"live" | "ended" | "lost">("live");

  const reload = useCallback(() => {
    api.get<Run>(`/api/v1/runs/${q(id)}`).then(setRun, setError);
  }, [id]);

  useEffect(() => {
    setRun(null);
    setError(null);
    setSteps({});
    setLogs([]);
    setStream("live");
    reload();
    const source = new EventSource(`/api/v1/runs/${q(id)}/logs`);
    const onEvent = (message: MessageEvent<string>) => {
      const e = JSON.parse(message.data) as RunEvent;
      const status = STEP_STATUS[e.type];
      if (status && e.step) setSteps((s) => ({ ...s, [e.step!]: status }));
      if (e.type === "log") setLogs((l) => [...l, { step: e.step, line: String(e.data.line ?? ""), seq: e.seq }]);
      if (e.type.startsWith("run.")) reload();
    };
    for (const type of [...Object.keys(STEP_STATUS), "log", "run.started", "run.finished"]) {
      source.addEventListener(type, onEvent as EventListener);
    }
    source.addEventListener("end", () => {
      source.close();
      setStream("ended");
      reload();
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setStream("lost");
    };
    return () => source.close();
  }, [id, reload]);

  const act = async (what: "cancel" | "retry") => {
    setActionError(null);
    try {
      const next = await api.post<Run>(`/api/v1/runs/${q(id)}/${what}`);
      if (what === "retry") navigate(`/runs/${q(next.id)}`);
      else setRun(next);
    } catch (e) {
      setActionError(e);
    }
  };

  if (error) return <Problems error={error} />;
  if (!run) return <p className="loading">Loading…</p>;
  const shown = logs.filter((l) => selected === null || l.step === selected);
  return (
    <div className="run">
      <h1>Run <code>{run.id}</code> <Status value={run.status} /></h1>
      <p>
        {run.pipeline} · created {when(run.created_at)}
        {stream === "live" && LIVE.has(run.status) && <span className="live"> · live</span>}
        {stream === "lost" && <span className="muted"> · live updates lost: reload the page</span>}
      </p>
      {run.details && <p className={run.status === "failed" ? "problem" : "muted"}>{run.details}</p>}
      <div className="toolbar">
        {LIVE.has(run.status) ? (
          <button onClick={() => act("cancel")}>Cancel</button>
        ) : (
          <button onClick={() => act("retry")}>Retry</button>
        )}
      </div>
      <Problems error={actionError} />
      <div className="run-body">
        <ul className="step-list" aria-label="steps">
          <li>
            <button className={selected === null ? "active" : ""} onClick={() => setSelected(null)}>All logs</button>
          </li>
          {run.steps.map((s) => {
            const status = steps[s] ?? "pending";
            return (
              <li key={s} className={`step step-${status}`} data-step={s} data-status={status}>
                <button className={selected === s ? "active" : ""} onClick={() => setSelected(s)}>
                  <span className="dot" /> {s} <small>{status}</small>
                </button>
              </li>
            );
          })}
        </ul>
        <pre className="logs" aria-label="logs">
          {shown.map((l) => `${l.step ? `[${l.step}] ` : ""}${l.line}`).join("\n") || "No log lines yet."}
        </pre>
      </div>
    </div>
  );
}
