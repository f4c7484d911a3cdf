// The monitoring page: the platform, its runs, the models they train and what they cost, drawn from the
// gateway (which reads Prometheus when one is configured, else its own history); refreshed every 10 s.
import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { api } from "../api";
import { Problems } from "../components";
import ChartView, { type ChartData } from "./ChartView";
import { RANGES } from "./format";
import "./monitoring.css";

const PANELS: [string, string][] = [
  ["overview", "Overview"],
  ["runs", "Runs and steps"],
  ["models", "Models"],
  ["costs", "Costs"],
];
const WITH_PIPELINE = new Set(["runs", "models"]);
const REFRESH_MS = 10_000;

interface Charts {
  panel: string;
  source: "prometheus" | "gateway";
  note: string | null;
  charts: ChartData[];
}

interface PipelineInfo {
  name: string;
  runs: number;
  has_metrics: boolean;
}

export default function Monitoring() {
  const [params, setParams] = useSearchParams();
  const panel = PANELS.some(([p]) => p === params.get("panel")) ? params.get("panel")! : "overview";
  const range = Number(params.get("range")) || 3600;
  const pipeline = WITH_PIPELINE.has(panel) ? params.get("pipeline") ?? "" : "";
  const [data, setData] = useState<Charts | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [pipelines, setPipelines] = useState<PipelineInfo[]>([]);
  const [tick, setTick] = useState(0);

  const set = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next);
  };

  useEffect(() => {
    api.get<PipelineInfo[]>("/api/v1/monitoring/pipelines").then(setPipelines, setError);
  }, [tick]);

  useEffect(() => {
    let live = true;
    const query = new URLSearchParams({ panel, range: String(range) });
    if (pipeline) query.set("pipeline", pipeline);
    api.get<Charts>(`/api/v1/monitoring/charts?${query}`).then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
      },
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [panel, range, pipeline, tick]);

  useEffect(() => {
    const timer = window.setInterval(() => setTick((t) => t + 1), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, []);

  const shown = data && data.panel === panel ? data : null;
  return (
    <section className="monitoring">
      <h1>Monitoring</h1>
      <div className="monitoring-tabs" role="tablist" aria-label="Panels">
        {PANELS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={`tab-${id}`}
            aria-selected={id === panel}
            aria-controls="monitoring-panel"
            className={id === panel ? "active" : ""}
            onClick={() => set({ panel: id })}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="monitoring-controls">
        <label>
          Range{" "}
          <select value={range} onChange={(e) => set({ range: e.target.value })}>
            {RANGES.map(([label, seconds]) => (
              <option key={seconds} value={seconds}>{`last ${label}`}</option>
            ))}
          </select>
        </label>
        {WITH_PIPELINE.has(panel) && (
          <label>
            Pipeline{" "}
            <select value={pipeline} onChange={(e) => set({ pipeline: e.target.value })}>
              <option value="">all pipelines</option>
              {pipelines
                .filter((p) => panel !== "models" || p.has_metrics)
                .map((p) => (
                  <option key={p.name} value={p.name}>{`${p.name} (${p.runs} runs)`}</option>
                ))}
            </select>
          </label>
        )}
        {shown && (
          <span className="muted source" data-source={shown.source}>
            {shown.source === "prometheus" ? "from Prometheus" : "from the gateway's history"} · refreshed every 10 s
          </span>
        )}
      </div>
      <Problems error={error} />
      {shown?.note && <p className="chart-note" role="status">{shown.note}</p>}
      <div id="monitoring-panel" role="tabpanel" aria-labelledby={`tab-${panel}`} className="monitoring-grid">
        {!shown && !error && <p className="loading">Loading…</p>}
        {shown?.charts.map((c) => <ChartView key={c.id} chart={c} />)}
      </div>
    </section>
  );
}
