// A run's artifacts (downloaded with the session cookie), timings, and deployments with their destroy.
import { useEffect, useState } from "react";
import { api, q, type Run } from "../api";
import { Problems, Status, when } from "../components";
import { useStoreVersion, type RunStore } from "./events";

interface Artifact {
  name: string;
  type: string | null;
  step: string | null;
  available: boolean;
  kind: "file" | "directory" | null;
  filename: string | null;
  size: number | null;
  withheld: boolean;
}
interface Deployment {
  name: string;
  provider: string;
  status: string;
  details: string | null;
  price_per_hour: number | null;
}

function seconds(from?: number | null, to?: number | null): string {
  if (!from || !to) return "";
  const s = to - from;
  return s < 60 ? `${s.toFixed(2)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function size(bytes: number | null): string {
  if (bytes === null) return "";
  return bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`;
}

/** The run's pipeline outputs; reloaded when the run ends (they are recorded then). */
export function Artifacts({ run }: { run: Run }) {
  const [items, setItems] = useState<Artifact[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api.get<Artifact[]>(`/api/v1/runs/${q(run.id)}/artifacts`).then(setItems, setError);
  }, [run.id, run.status]);
  if (error) return <Problems error={error} />;
  if (!items) return null;
  if (!items.length) return <p className="muted">No artifacts{run.finished_at ? "" : " yet: they are listed when the run ends"}.</p>;
  return (
    <table className="artifacts">
      <thead><tr><th>Artifact</th><th>Type</th><th>From step</th><th>Size</th><th /></tr></thead>
      <tbody>
        {items.map((a) => (
          <tr key={a.name} data-artifact={a.name}>
            <td>{a.name}</td>
            <td>{a.type}</td>
            <td>{a.step}</td>
            <td>{size(a.size)}</td>
            <td>
              {a.withheld ? (
                <span className="muted">withheld: it holds a secret's value</span>
              ) : !a.available ? (
                <span className="muted">no longer in the store</span>
              ) : (
                <a href={`/api/v1/runs/${q(run.id)}/artifacts/${q(a.name)}`} download={a.filename ?? a.name}>
                  Download {a.kind === "directory" ? "(.tar.gz)" : ""}
                </a>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** When the run was queued, started and ended, and each step's duration (from its events). */
export function Timings({ run, store }: { run: Run; store: RunStore }) {
  useStoreVersion(store);
  const rows = run.steps.filter((s) => store.times.has(s));
  return (
    <div className="timings">
      <dl>
        <dt>Queued</dt><dd>{when(run.created_at)}</dd>
        <dt>Started</dt><dd>{when(run.started_at)} {run.started_at && <small>(waited {seconds(run.created_at, run.started_at)})</small>}</dd>
        <dt>Ended</dt><dd>{when(run.finished_at)} {run.finished_at && <small>(ran {seconds(run.started_at, run.finished_at)})</small>}</dd>
      </dl>
      {rows.length > 0 && (
        <table className="step-times">
          <thead><tr><th>Step</th><th>Status</th><th>Duration</th></tr></thead>
          <tbody>
            {rows.map((s) => {
              const t = store.times.get(s)!;
              return (
                <tr key={s}>
                  <td>{s}</td>
                  <td>{store.status.get(s)}</td>
                  <td>{t.ended ? seconds(t.started ?? t.ended, t.ended) : "running"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** What the run provisioned (remote targets), and tearing it down. Nothing for a local run. */
export function Deployments({ run }: { run: Run }) {
  const [items, setItems] = useState<Deployment[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api.get<Deployment[]>(`/api/v1/runs/${q(run.id)}/deployments`).then(setItems, setError);
  }, [run.id, run.status]);
  const destroy = async () => {
    if (!window.confirm("Destroy everything this run provisioned?")) return;
    setBusy(true);
    setError(null);
    try {
      setItems(await api.post<Deployment[]>(`/api/v1/runs/${q(run.id)}/destroy`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!items?.length && !error) return null;
  return (
    <section className="deployments">
      <h2>Deployments</h2>
      <Problems error={error} />
      {items && (
        <table>
          <thead><tr><th>Deployment</th><th>Provider</th><th>State</th><th>USD/h</th><th>Details</th></tr></thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.name}>
                <td>{d.name}</td>
                <td>{d.provider}</td>
                <td><Status value={d.status} /></td>
                <td>{d.price_per_hour ?? ""}</td>
                <td>{d.details}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items?.some((d) => d.status !== "destroyed") && (
        <button className="danger" onClick={destroy} disabled={busy}>{busy ? "Destroying…" : "Destroy deployments"}</button>
      )}
    </section>
  );
}
