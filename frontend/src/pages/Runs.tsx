import { useEffect, useState } from "react";
import { useSearchParams } from "react-router";
import { api, type Run } from "../api";
import { Problems, RunLink, Status, when } from "../components";
import "../runs/runs.css";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const PAGE = 25;
/** While a run on the page is queued or running, the page is read again this often. */
const REFRESH_MS = 2000;

interface RunPage {
  items: Run[];
  total: number;
}

/** Every run, newest first, filtered by status and pipeline, a page at a time; refreshed while some
 * run on the page is still queued or running. The filters live in the address (shareable). */
export default function Runs() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const pipeline = params.get("pipeline") ?? "";
  const page = Math.max(0, Number(params.get("page") ?? "0") || 0);
  const [typed, setTyped] = useState(pipeline);
  const [data, setData] = useState<RunPage | null>(null);
  const [error, setError] = useState<unknown>(null);
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
    let live = true;
    const query = new URLSearchParams({ limit: String(PAGE), offset: String(page * PAGE) });
    if (status) query.set("status", status);
    if (pipeline) query.set("pipeline", pipeline);
    api.get<RunPage>(`/api/v1/runs?${query}`).then(
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
  }, [status, pipeline, page, tick]);

  const active = data?.items.some((r) => r.status === "queued" || r.status === "running") ?? false;
  useEffect(() => {
    if (!active) return;
    const timer = window.setTimeout(() => setTick((t) => t + 1), REFRESH_MS);
    return () => window.clearTimeout(timer);
  }, [active, data]);

  const pages = data ? Math.max(1, Math.ceil(data.total / PAGE)) : 1;
  return (
    <div className="runs">
      <h1>Runs</h1>
      <form
        className="runs-filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          set({ pipeline: typed.trim(), page: "" });
        }}
      >
        <label>
          Status{" "}
          <select aria-label="status" value={status} onChange={(e) => set({ status: e.target.value, page: "" })}>
            {STATUSES.map((s) => <option key={s} value={s}>{s || "any"}</option>)}
          </select>
        </label>
        <label>
          Pipeline{" "}
          <input
            aria-label="pipeline"
            placeholder="pipeline/iris-classifier"
            value={typed}
            maxLength={300}
            onChange={(e) => setTyped(e.target.value)}
          />
        </label>
        <button type="submit">Filter</button>
        {(status || pipeline) && (
          <button type="button" onClick={() => { setTyped(""); setParams({}); }}>Clear</button>
        )}
        {active && <span className="live">refreshing while runs are live</span>}
      </form>
      <Problems error={error} />
      <table>
        <thead><tr><th>Run</th><th>Pipeline</th><th>Status</th><th>Steps</th><th>Created</th></tr></thead>
        <tbody>
          {data?.items.map((r) => (
            <tr key={r.id} data-run={r.id}>
              <td><RunLink id={r.id} /></td>
              <td>{r.pipeline}</td>
              <td><Status value={r.status} /></td>
              <td>{r.steps.length}</td>
              <td>{when(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && (
        <div className="pager">
          <button disabled={page === 0} onClick={() => set({ page: String(page - 1) })}>Previous</button>
          <span>page {page + 1} of {pages} · {data.total} run(s)</span>
          <button disabled={page + 1 >= pages} onClick={() => set({ page: String(page + 1) })}>Next</button>
        </div>
      )}
    </div>
  );
}
