// Units of the monitoring charts, formatted for axes, legends and tables.

/** A value in its chart's unit, short (axes) or with its unit spelled out (tooltips, tables). */
export function formatValue(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  switch (unit) {
    case "seconds":
      return duration(value);
    case "ratio":
      return `${(value * 100).toFixed(value < 0.1 && value > 0 ? 1 : 0)}%`;
    case "usd":
      return `$${value.toFixed(value < 10 ? 2 : 0)}`;
    case "usd/h":
      return `$${value.toFixed(value < 10 ? 2 : 0)}/h`;
    case "requests/s":
      return `${compact(value)}/s`;
    case "runs":
    case "count":
      return compact(value);
    default:
      return compact(value);
  }
}

function compact(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}

function duration(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Ranges the picker offers: label and seconds. */
export const RANGES: [string, number][] = [
  ["15 minutes", 900],
  ["1 hour", 3600],
  ["6 hours", 6 * 3600],
  ["24 hours", 24 * 3600],
  ["7 days", 7 * 24 * 3600],
  ["30 days", 30 * 24 * 3600],
];
