// What a run's terraform steps hold in their state (kept: not ephemeral), and destroying it.
import { useEffect, useState } from "react";
import { api, q, type Run } from "../api";
import { Problems } from "../components";

interface Held {
  step: string;
  workdir: string;
  resources: string[];
}
interface Destroyed {
  workdir: string;
  status: "destroyed" | "failed";
  problem?: { what: string; where: string; fix: string };
}

/** The run's terraform infrastructure, step by step; nothing when the run has no terraform step. */
export function Infrastructure({ run }: { run: Run }) {
  const [items, setItems] = useState<Held[] | null>(null);
  const [failed, setFailed] = useState<Destroyed[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api.get<Held[]>(`/api/v1/runs/${q(run.id)}/infra`).then(setItems, setError);
  }, [run.id, run.status]);
  const destroy = async () => {
    if (!window.confirm("Destroy the infrastructure this run's terraform steps created?")) return;
    setBusy(true);
    setError(null);
    try {
      const answer = await api.post<Destroyed[]>(`/api/v1/runs/${q(run.id)}/infra/destroy`);
      setFailed(answer.filter((d) => d.status === "failed"));
      setItems(await api.get<Held[]>(`/api/v1/runs/${q(run.id)}/infra`));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!items?.length && !error) return null;
  const held = items?.some((i) => i.resources.length > 0);
  return (
    <section className="infrastructure" aria-label="infrastructure">
      <h2>Infrastructure</h2>
      <Problems error={error} />
      {items && (
        <table>
          <thead><tr><th>Step</th><th>Resources in its state</th></tr></thead>
          <tbody>
            {items.map((i) => (
              <tr key={i.workdir}>
                <td>{i.step}</td>
                <td>{i.resources.length ? i.resources.join(", ") : "none (destroyed)"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {failed.map((f) => (
        <p key={f.workdir} className="problem" role="alert">
          {f.problem ? `${f.problem.what} — ${f.problem.fix}` : `cannot destroy ${f.workdir}`}
        </p>
      ))}
      {held && (
        <button className="danger" onClick={destroy} disabled={busy}>{busy ? "Destroying…" : "Destroy infrastructure"}</button>
      )}
    </section>
  );
}
