// Step logs in a virtualised list (only the visible rows are in the DOM) that follows the tail while the
// reader is at the bottom; scrolling up stops following until they scroll back down.
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState } from "react";
import { MAX_LOG_LINES, useStoreVersion, type RunStore } from "./events";

const ROW = 18;

/** The logs of every step, or of `step` only. */
export default function LogView({ store, step }: { store: RunStore; step: string | null }) {
  const version = useStoreVersion(store);
  const lines = useMemo(
    () => (step === null ? store.logs : store.logs.filter((l) => l.step === step)),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [store, step, version],
  );
  const scroller = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const rows = useVirtualizer({
    count: lines.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 20,
  });
  useEffect(() => {
    if (follow && lines.length) rows.scrollToIndex(lines.length - 1, { align: "end" });
  }, [follow, lines.length, rows]);
  const onScroll = () => {
    const el = scroller.current;
    if (el) setFollow(el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2);
  };
  return (
    <div className="log-view">
      <div className="log-head">
        <span>{step === null ? "All steps" : step}: {lines.length} line(s)</span>
        {store.dropped > 0 && (
          <span className="log-dropped" role="status">
            {store.dropped} older line(s) dropped: only the last {MAX_LOG_LINES} are kept on this page
          </span>
        )}
        {!follow && <button onClick={() => setFollow(true)}>Follow the end</button>}
      </div>
      <div ref={scroller} className="logs" onScroll={onScroll} tabIndex={0} role="log" aria-label="logs" data-testid="logs">
        {lines.length === 0 && <div className="muted">No log lines yet.</div>}
        <div style={{ height: rows.getTotalSize(), position: "relative" }}>
          {rows.getVirtualItems().map((v) => {
            const l = lines[v.index];
            return (
              <div key={v.key} className="log-line" style={{ position: "absolute", top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${v.start}px)` }}>
                {step === null && l.step && <span className="log-step">[{l.step}] </span>}
                {l.line}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
