import { Link, useSearchParams } from "react-router";
import { api, q, type Entry } from "../api";
import { Problems, useLoad } from "../components";

const KINDS = ["pipeline", "playbook", "metapipeline"] as const;

/** Browse the catalogue: the three kinds, free-text search (both kept in the address). */
export default function Catalogue() {
  const [params, setParams] = useSearchParams();
  const kind = params.get("kind") ?? "pipeline";
  const search = params.get("search") ?? "";
  const list = useLoad(
    () => api.get<Entry[]>(`/api/v1/catalogue?kind=${q(kind)}${search ? `&search=${q(search)}` : ""}`),
    [kind, search],
  );
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: k === "search" });
  };
  return (
    <div className="catalogue">
      <h1>Catalogue</h1>
      <div className="tabs" role="tablist">
        {KINDS.map((k) => (
          <button key={k} role="tab" aria-selected={k === kind} className={k === kind ? "active" : ""} onClick={() => set("kind", k)}>
            {k}s
          </button>
        ))}
        <input type="search" placeholder="Search name, description, labels" aria-label="search" value={search} onChange={(e) => set("search", e.target.value)} />
      </div>
      <Problems error={list.error} />
      {list.data && list.data.length === 0 && <p>Nothing matches.</p>}
      <table>
        <tbody>
          {list.data?.map((e) => (
            <tr key={e.ref}>
              <td><Link to={`/catalogue/${e.kind}/${q(e.name)}`}>{e.name}</Link></td>
              <td>{e.latest}</td>
              <td>{e.description}</td>
              <td>{Object.entries(e.labels ?? {}).map(([k, v]) => <span className="label" key={k}>{k}: {v}</span>)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
