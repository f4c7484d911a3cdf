import { useSearchParams } from "react-router";
import { api, q, type Run } from "../api";
import { Problems, RunLink, Status, useLoad, when } from "../components";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];

/** Every run, newest first, filtered by status. */
export default function Runs() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const runs = useLoad(
    () => api.get<{ items: Run[]; total: number }>(`/api/v1/runs?limit=100${status ? `&status=${q(status)}` : ""}`),
    [status],
  );
  return (
    <div className="runs">
      <h1>Runs</h1>
      <label>
        Status{" "}
        <select aria-label="status" value={status} onChange={(e) => setParams(e.target.value ? { status: e.target.value } : {})}>
          {STATUSES.map((s) => <option key={s} value={s}>{s || "any"}</option>)}
        </select>
      </label>
      <Problems error={runs.error} />
      <table>
        <thead><tr><th>Run</th><th>Pipeline</th><th>Status</th><th>Created</th></tr></thead>
        <tbody>
          {runs.data?.items.map((r) => (
            <tr key={r.id}>
              <td><RunLink id={r.id} /></td>
              <td>{r.pipeline}</td>
              <td><Status value={r.status} /></td>
              <td>{when(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {runs.data && <p>{runs.data.total} run(s)</p>}
    </div>
  );
}
