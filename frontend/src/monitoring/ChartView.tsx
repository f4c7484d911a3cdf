// One chart of the monitoring page, drawn with uPlot; its data is replaced in place when it refreshes.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue } from "./format";

export interface SeriesData {
  name: string;
  values: (number | null)[];
}

export interface ChartData {
  id: string;
  title: string;
  unit: string;
  description: string;
  x: number[];
  series: SeriesData[];
  note: string | null;
}

const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#0a7b83", "#bc4c00", "#6e7781"];
const STATUS_COLORS: Record<string, string> = { succeeded: "#1a7f37", failed: "#cf222e", cancelled: "#6e7781" };

function colorOf(name: string, i: number): string {
  return STATUS_COLORS[name] ?? COLORS[i % COLORS.length];
}

/** A tick of the runs' end times: the time of day within a day, the date beyond. */
function clock(u: uPlot, ticks: number[]): string[] {
  const span = (u.scales.x.max ?? 0) - (u.scales.x.min ?? 0);
  const opts: Intl.DateTimeFormatOptions =
    span < 86_400 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { month: "numeric", day: "numeric", hour: "2-digit" };
  return ticks.map((t) => new Date(t * 1000).toLocaleString([], opts));
}

function hasData(chart: ChartData): boolean {
  return chart.series.some((s) => s.values.some((v) => v !== null));
}

function Plot({ chart }: { chart: ChartData }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = chart.series.map((s) => s.name).join("\u0000");
  // a metric across runs has one point per run: draw the points and join them across runs without it
  const sparse = chart.id === "model_metrics";
  useEffect(() => {
    const el = host.current!;
    const unit = chart.unit;
    const whole = unit === "runs" || unit === "count"; // counted things: whole ticks only
    plot.current = new uPlot(
      {
        width: Math.max(300, Math.min(640, el.clientWidth || 480)),
        height: 220,
        legend: { live: false },
        series: [
          {},
          ...chart.series.map((s, i) => ({
            label: s.name,
            stroke: colorOf(s.name, i),
            width: 2,
            spanGaps: sparse,
            // a series with few values would draw no line: show its points
            points: { show: sparse || s.values.filter((v) => v !== null).length < 3, size: 6 },
            value: (_u: uPlot, v: number | null) => formatValue(v, unit),
          })),
        ],
        // runs' end times are irregular: label them as clock times (uPlot's default grid suits the others)
        axes: [sparse ? { values: clock, space: 110 } : {}, { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => (whole && !Number.isInteger(t) ? "" : formatValue(t, unit))), size: 70 }],
        scales: { y: { range: (_u, min, max) => [Math.min(0, min), max > min ? max : min + 1] } },
      },
      [chart.x, ...chart.series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // recreated when its series change; otherwise only its data is replaced (below)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, chart.id]);
  useEffect(() => {
    plot.current?.setData([chart.x, ...chart.series.map((s) => s.values)] as uPlot.AlignedData);
  }, [chart]);
  return <div className="chart-plot" ref={host} />;
}

/** A titled chart, or its empty state (with the gateway's note saying why). */
export default function ChartView({ chart }: { chart: ChartData }) {
  const drawn = hasData(chart);
  // the sum of every value: what a test (or a curious user) can read without looking at the canvas
  const total = chart.series.reduce((n, s) => n + s.values.reduce<number>((m, v) => m + (v ?? 0), 0), 0);
  return (
    <figure
      className="monitoring-chart"
      data-chart={chart.id}
      data-drawn={drawn ? "yes" : "no"}
      data-total={total}
      aria-labelledby={`chart-${chart.id}`}
    >
      <figcaption>
        <h3 id={`chart-${chart.id}`}>{chart.title}</h3>
        {chart.description && <p className="muted">{chart.description}</p>}
      </figcaption>
      {drawn ? <Plot chart={chart} /> : <p className="chart-empty">No data in this range.</p>}
      {chart.note && <p className="chart-note">{chart.note}</p>}
    </figure>
  );
}
