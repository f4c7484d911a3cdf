import { memo, useCallback, useEffect, useState } from "react";
import { useNavigate, useParams } from "react-router";
import { api, q, type Run } from "../api";
import { Problems, Status, when } from "../components";
import { useRunEvents, useStepStatus, type RunStore } from "../runs/events";
import LogView from "../runs/LogView";
import Metrics from "../runs/Metrics";
import RunGraph, { type GraphStep } from "../runs/RunGraph";
import { Artifacts, Deployments, Timings } from "../runs/RunDetails";
import { Infrastructure } from "../runs/Infrastructure";
import "../runs/runs.css";

const LIVE = new Set(["queued", "running"]);
const TABS = ["Logs", "Metrics", "Artifacts", "Timings"] as const;
type Tab = (typeof TABS)[number];

const StepItem = memo(function StepItem({ step, store, selected, onSelect }: { step: string; store: RunStore; selected: boolean; onSelect: (s: string) => void }) {
  const status = useStepStatus(store, step);
  return (
    <li className={`step step-${status}`} data-step={step} data-status={status}>
      <button className={selected ? "active" : ""} onClick={() => onSelect(step)}>
        <span className="dot" /> {step} <small>{status}</small>
      </button>
    </li>
  );
});

/** One run: its DAG with live step status (the run's Server-Sent Events), logs, metrics, artifacts,
 * timings and deployments; cancel and retry. */
export default function RunPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const [run, setRun] = useState<Run | null>(null);
  const [graph, setGraph] = useState<GraphStep[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("Logs");

  const reload = useCallback(() => {
    api.get<Run>(`/api/v1/runs/${q(id)}`).then(setRun, setError);
  }, [id]);
  const { store, stream } = useRunEvents(id, reload);

  useEffect(() => {
    setRun(null);
    setGraph(null);
    setError(null);
    setSelected(null);
    reload();
    api.get<{ steps: GraphStep[] }>(`/api/v1/runs/${q(id)}/graph`).then(
      (g) => setGraph(g.steps),
      () => setGraph([]), // the step list below still shows every step
    );
  }, [id, reload]);

  const select = useCallback((s: string | null) => {
    setSelected(s);
    setTab("Logs");
  }, []);

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
  return (
    <div className="run">
      <h1>Run <code>{run.id}</code> <Status value={run.status} /></h1>
      <p>
        {run.pipeline} · created {when(run.created_at)} · {run.steps.length} step(s)
        {run.target && <> · target {String(run.target.provider ?? "")}</>}
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
      {graph && graph.length > 0 && <RunGraph steps={graph} store={store} onSelect={select} />}
      <Deployments run={run} />
      <Infrastructure run={run} />
      <div className="tabs" role="tablist" aria-label="run details">
        {TABS.map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? "active" : ""} onClick={() => setTab(t)}>{t}</button>
        ))}
      </div>
      <div role="tabpanel" aria-label={tab}>
        {tab === "Logs" && (
          <div className="run-body">
            <ul className="step-list" aria-label="steps">
              <li>
                <button className={selected === null ? "active" : ""} onClick={() => select(null)}>All logs</button>
              </li>
              {run.steps.map((s) => <StepItem key={s} step={s} store={store} selected={selected === s} onSelect={select} />)}
            </ul>
            <LogView store={store} step={selected} />
          </div>
        )}
        {tab === "Metrics" && <Metrics store={store} />}
        {tab === "Artifacts" && <Artifacts run={run} />}
        {tab === "Timings" && <Timings run={run} store={store} />}
      </div>
    </div>
  );
}
