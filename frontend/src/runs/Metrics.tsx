// The run's metrics (`ctx.metric(name, value)` in a step, `metric` events): one uPlot chart per series,
// updated live, and a table of the last values (a metric reported once is a single point).
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { useStoreVersion, type RunStore, type Series } from "./events";

function Chart({ series, start, version }: { series: Series; start: number; version: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const title = series.step ? `${series.name} (${series.step})` : series.name;
  useEffect(() => {
    const el = host.current!;
    plot.current = new uPlot(
      {
        title,
        width: Math.max(280, Math.min(560, el.clientWidth || 420)),
        height: 200,
        scales: { x: { time: false } },
        series: [{ label: "seconds" }, { label: series.name, stroke: "#0969da", width: 2, points: { show: true, size: 7 } }],
        axes: [{ label: "seconds since the first metric" }, {}],
      },
      [series.ts.map((t) => t - start), series.values.slice()],
      el,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // one chart per series; its data is updated below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [title]);
  useEffect(() => {
    plot.current?.setData([series.ts.map((t) => t - start), series.values.slice()]);
  }, [series, start, version]);
  return <figure className="metric-chart" data-metric={series.name} aria-label={`metric ${title}`} ref={host} />;
}

/** Charts and the table of last values; nothing when the run reported no metric. */
export default function Metrics({ store }: { store: RunStore }) {
  const version = useStoreVersion(store);
  // series with a history first: a metric reported once is a single point
  const all = [...store.metrics.values()].sort((a, b) => Number(b.values.length > 1) - Number(a.values.length > 1));
  if (!all.length) return <p className="muted">No metrics reported yet.</p>;
  return (
    <div className="metrics">
      <table className="metric-table">
        <thead><tr><th>Metric</th><th>Step</th><th>Last value</th><th>Points</th></tr></thead>
        <tbody>
          {all.map((s) => (
            <tr key={`${s.step}/${s.name}`}>
              <td>{s.name}</td>
              <td>{s.step}</td>
              <td>{s.values[s.values.length - 1].toPrecision(6)}</td>
              <td>{s.values.length}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="metric-charts">
        {all.map((s) => <Chart key={`${s.step}/${s.name}`} series={s} start={store.metricStart ?? 0} version={version} />)}
      </div>
    </div>
  );
}
