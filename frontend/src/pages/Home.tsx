import { Link } from "react-router";
import { api, q, type Entry, type Run, type Target } from "../api";
import { Problems, RunLink, Status, useLoad, when } from "../components";
import "../admin/admin.css";

const RECENT = 8;

/** The signed-in home: counts, what to start, recent runs, pipelines and targets at a glance. */
export default function Home() {
  const runs = useLoad(() => api.get<{ items: Run[]; total: number }>(`/api/v1/runs?limit=${RECENT}`), []);
  const running = useLoad(() => api.get<{ items: Run[]; total: number }>("/api/v1/runs?limit=1&status=running"), []);
  const entries = useLoad(() => api.get<Entry[]>("/api/v1/catalogue"), []);
  const targets = useLoad(() => api.get<Target[]>("/api/v1/targets"), []);
  const count = (kind: string) => entries.data?.filter((e) => e.kind === kind).length;
  const pipelines = entries.data?.filter((e) => e.kind === "pipeline") ?? [];
  const available = targets.data?.filter((t) => t.available).length;
  return (
    <div className="home">
      <h1>Home</h1>
      <nav className="actions" aria-label="create">
        <Link to="/builder/new/pipeline">New pipeline</Link>
        <Link to="/builder/new/metapipeline">New meta-pipeline</Link>
        <Link to="/editor/new">New playbook</Link>
      </nav>
      <div className="counts" data-testid="counts">
        <Link to="/runs"><strong>{runs.data?.total ?? "…"}</strong> runs</Link>
        <Link to="/runs?status=running"><strong>{running.data?.total ?? "…"}</strong> running</Link>
        <Link to="/catalogue?kind=pipeline"><strong>{count("pipeline") ?? "…"}</strong> pipelines</Link>
        <Link to="/catalogue?kind=playbook"><strong>{count("playbook") ?? "…"}</strong> playbooks</Link>
        <Link to="/catalogue?kind=metapipeline"><strong>{count("metapipeline") ?? "…"}</strong> meta-pipelines</Link>
        <Link to="/targets"><strong>{available ?? "…"}</strong> of {targets.data?.length ?? "…"} targets ready</Link>
      </div>
      <div className="home-grid">
        <section id="recent-runs" aria-labelledby="recent-runs-h">
          <h2 id="recent-runs-h">Recent runs</h2>
          <Problems error={runs.error} />
          {runs.data && runs.data.items.length === 0 && <p>No runs yet: launch a pipeline from the catalogue.</p>}
          <ul>
            {runs.data?.items.map((r) => (
              <li key={r.id}>
                <RunLink id={r.id} /> {r.pipeline} <Status value={r.status} /> <small>{when(r.created_at)}</small>
              </li>
            ))}
          </ul>
          {runs.data && runs.data.total > runs.data.items.length && (
            <p className="note">The {runs.data.items.length} newest of {runs.data.total}.</p>
          )}
          <Link to="/runs">All runs</Link>
        </section>
        <section id="pipelines" aria-labelledby="pipelines-h">
          <h2 id="pipelines-h">Pipelines</h2>
          <Problems error={entries.error} />
          {entries.data && pipelines.length === 0 && <p>No pipelines yet: build one.</p>}
          <ul>
            {pipelines.slice(0, RECENT).map((e) => (
              <li key={e.ref}>
                <Link to={`/catalogue/${q(e.kind)}/${q(e.name)}`}>{e.name}</Link> <small>{e.latest}</small> {e.description}
              </li>
            ))}
          </ul>
          {pipelines.length > RECENT && (
            <p className="note">{RECENT} of {pipelines.length}: the others are in the catalogue.</p>
          )}
          <Link to="/catalogue?kind=pipeline">All pipelines</Link>
        </section>
        <section id="targets" aria-labelledby="targets-h">
          <h2 id="targets-h">Targets</h2>
          <Problems error={targets.error} />
          <ul>
            {targets.data?.map((t) => (
              <li key={t.provider}>
                <strong>{t.provider}</strong>{" "}
                {t.available ? (
                  <span className="ok">available</span>
                ) : (
                  <span className="muted">{t.reason ?? (t.missing.length ? `missing ${t.missing.join(", ")}` : "not available")}</span>
                )}
              </li>
            ))}
          </ul>
          <Link to="/targets">Targets, offers and prices</Link>
        </section>
      </div>
    </div>
  );
}
