import { Link } from "react-router";
import { api, type Entry, type Run, type Target } from "../api";
import { Problems, RunLink, Status, useLoad, when } from "../components";

/** The signed-in home: recent runs, pipelines and targets at a glance. */
export default function Home() {
  const runs = useLoad(() => api.get<{ items: Run[]; total: number }>("/api/v1/runs?limit=8"), []);
  const pipelines = useLoad(() => api.get<Entry[]>("/api/v1/catalogue?kind=pipeline"), []);
  const targets = useLoad(() => api.get<Target[]>("/api/v1/targets"), []);
  return (
    <div className="home">
      <h1>Home</h1>
      <section id="recent-runs">
        <h2>Recent runs {runs.data && <small>({runs.data.total} in all)</small>}</h2>
        <Problems error={runs.error} />
        {runs.data && runs.data.items.length === 0 && <p>No runs yet: launch a pipeline from the catalogue.</p>}
        <ul>
          {runs.data?.items.map((r) => (
            <li key={r.id}>
              <RunLink id={r.id} /> {r.pipeline} <Status value={r.status} /> <small>{when(r.created_at)}</small>
            </li>
          ))}
        </ul>
        <Link to="/runs">All runs</Link>
      </section>
      <section id="pipelines">
        <h2>Pipelines</h2>
        <Problems error={pipelines.error} />
        <ul>
          {pipelines.data?.map((e) => (
            <li key={e.ref}>
              <Link to={`/catalogue/${e.kind}/${encodeURIComponent(e.name)}`}>{e.name}</Link>{" "}
              <small>{e.latest}</small> {e.description}
            </li>
          ))}
        </ul>
      </section>
      <section id="targets">
        <h2>Targets</h2>
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
      </section>
    </div>
  );
}
