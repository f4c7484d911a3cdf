// A run's live state, fed by its Server-Sent Events (GET /api/v1/runs/{id}/logs). Events are buffered and
// applied once per animation frame: a burst of hundreds of events is one store update and one render.
import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { q, type RunEvent } from "../api";

export const STEP_STATUS: Record<string, string> = {
  "step.started": "running",
  "step.finished": "succeeded",
  "step.failed": "failed",
  "step.retrying": "retrying",
  "step.skipped": "skipped",
  "step.cancelled": "cancelled",
};
const LISTENED = [...Object.keys(STEP_STATUS), "log", "metric", "run.started", "run.finished"];

/** Log lines kept in memory (older ones are dropped, and the page says how many). */
export const MAX_LOG_LINES = 10_000;
/** Characters kept of one log line. */
export const MAX_LINE = 2_000;
/** Points kept per metric series. */
export const MAX_POINTS = 5_000;

export interface LogLine {
  seq: number;
  step: string | null;
  line: string;
}
export interface Series {
  name: string;
  step: string | null;
  ts: number[];
  values: number[];
}
export interface StepTimes {
  started?: number;
  ended?: number;
}

/** Everything the run page shows of the run's events. Subscribers are told once per applied batch. */
export class RunStore {
  status = new Map<string, string>();
  times = new Map<string, StepTimes>();
  logs: LogLine[] = [];
  dropped = 0;
  metrics = new Map<string, Series>();
  /** When the run's first metric was reported (charts count seconds from it). */
  metricStart: number | null = null;
  version = 0;
  private listeners = new Set<() => void>();
  private stepListeners = new Map<string, Set<() => void>>();

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };
  /** Subscribe to one step's status only (a DAG node re-renders when its own status changes). */
  subscribeStep(step: string, fn: () => void): () => void {
    let set = this.stepListeners.get(step);
    if (!set) this.stepListeners.set(step, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }
  getVersion = () => this.version;

  /** Apply a batch of events; notifies each step whose status changed, then the page once. */
  apply(events: RunEvent[]): void {
    const changed = new Set<string>();
    for (const e of events) {
      const status = STEP_STATUS[e.type];
      if (status && e.step) {
        if (this.status.get(e.step) !== status) changed.add(e.step);
        this.status.set(e.step, status);
        const t = this.times.get(e.step) ?? {};
        if (e.type === "step.started") t.started = e.ts;
        else if (e.type !== "step.retrying") t.ended = e.ts;
        this.times.set(e.step, t);
      } else if (e.type === "log") {
        const text = String(e.data.line ?? "");
        this.logs.push({ seq: e.seq, step: e.step, line: text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)} … (line cut)` : text });
      } else if (e.type === "metric") {
        const value = Number(e.data.value);
        const name = String(e.data.name ?? "");
        if (!name || !Number.isFinite(value)) continue;
        this.metricStart ??= e.ts;
        const key = `${e.step ?? ""}\u0000${name}`;
        let s = this.metrics.get(key);
        if (!s) this.metrics.set(key, (s = { name, step: e.step, ts: [], values: [] }));
        s.ts.push(e.ts);
        s.values.push(value);
        if (s.ts.length > MAX_POINTS) {
          s.ts.splice(0, s.ts.length - MAX_POINTS);
          s.values.splice(0, s.values.length - MAX_POINTS);
        }
      }
    }
    if (this.logs.length > MAX_LOG_LINES) {
      const extra = this.logs.length - MAX_LOG_LINES;
      this.dropped += extra;
      this.logs = this.logs.slice(extra);
    }
    this.version++;
    for (const step of changed) this.stepListeners.get(step)?.forEach((fn) => fn());
    this.listeners.forEach((fn) => fn());
  }
}

/** One step's live status ("pending" until its first event). */
export function useStepStatus(store: RunStore, step: string): string {
  return useSyncExternalStore(
    (fn) => store.subscribeStep(step, fn),
    () => store.status.get(step) ?? "pending",
  );
}

/** Re-render on every applied batch; returns the store's version. */
export function useStoreVersion(store: RunStore): number {
  return useSyncExternalStore(store.subscribe, store.getVersion);
}

export type StreamState = "live" | "ended" | "lost";

/** Follow run `id`'s events into a RunStore, one batch per animation frame; `onRunEvent` is called
 * (once per batch) when the run itself changed (started, finished, the stream ended). */
export function useRunEvents(id: string, onRunEvent: () => void): { store: RunStore; stream: StreamState } {
  const [store, setStore] = useState(() => new RunStore());
  const [stream, setStream] = useState<StreamState>("live");
  const changed = useRef(onRunEvent);
  changed.current = onRunEvent;

  useEffect(() => {
    const fresh = new RunStore();
    setStore(fresh);
    setStream("live");
    let buffer: RunEvent[] = [];
    let frame = 0;
    let runChanged = false;
    const flush = () => {
      frame = 0;
      const batch = buffer;
      buffer = [];
      const started = performance.now();
      fresh.apply(batch);
      // measured up to the next frame: the render and the browser's layout of this batch included
      requestAnimationFrame(() => {
        performance.measure("run-batch", { start: started, end: performance.now(), detail: batch.length });
      });
      if (runChanged) {
        runChanged = false;
        changed.current();
      }
    };
    const source = new EventSource(`/api/v1/runs/${q(id)}/logs`);
    const onEvent = (message: MessageEvent<string>) => {
      let e: RunEvent;
      try {
        e = JSON.parse(message.data) as RunEvent;
      } catch {
        return;
      }
      buffer.push(e);
      if (e.type.startsWith("run.")) runChanged = true;
      if (!frame) frame = requestAnimationFrame(flush);
    };
    for (const type of LISTENED) source.addEventListener(type, onEvent as EventListener);
    source.addEventListener("end", () => {
      source.close();
      setStream("ended");
      runChanged = true;
      if (!frame) frame = requestAnimationFrame(flush);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) setStream("lost");
    };
    return () => {
      source.close();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [id]);
  return { store, stream };
}
