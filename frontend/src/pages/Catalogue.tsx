import { Link, useSearchParams } from "react-router";
import { api, q, type Entry } from "../api";
import { Problems, useLoad } from "../components";
import "../admin/admin.css";

const KINDS = ["pipeline", "playbook", "metapipeline"] as const;
const SHOWN = 200; // rows drawn at once; the rest are counted, never dropped silently

/** Browse the catalogue: the three kinds, free-text search and label filters (all kept in the address). */
export default function Catalogue() {
  const [params, setParams] = useSearchParams();
  const kind = params.get("kind") ?? "pipeline";
  const search = params.get("search") ?? "";
  const labels = params.getAll("label");
  const base = `/api/v1/catalogue?kind=${q(kind)}${search ? `&search=${q(search)}` : ""}`;
  // the labels offered: those of every entry of this kind and search; the list: those matching them all
  const all = useLoad(() => api.get<Entry[]>(base), [base]);
  const list = useLoad(
    () => (labels.length ? api.get<Entry[]>(base + labels.map((l) => `&label=${q(l)}`).join("")) : Promise.resolve(null)),
    [base, labels.join("\n")],
  );
  const rows = labels.length ? list.data ?? undefined : all.data;
  const offered = [...new Set((all.data ?? []).flatMap((e) => Object.entries(e.labels ?? {}).map(([k, v]) => `${k}=${v}`)))].sort();
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    if (k === "kind") next.delete("label");
    setParams(next, { replace: k === "search" });
  };
  const toggle = (label: string) => {
    const next = new URLSearchParams(params);
    next.delete("label");
    for (const l of labels.includes(label) ? labels.filter((x) => x !== label) : [...labels, label]) next.append("label", l);
    setParams(next);
  };
  return (
    <div className="catalogue">
      <h1>Catalogue</h1>
      <div className="tabs">
        <div role="tablist" aria-label="kind" className="tabs" style={{ marginBottom: 0 }}>
          {KINDS.map((k) => (
            <button key={k} role="tab" aria-selected={k === kind} className={k === kind ? "active" : ""} onClick={() => set("kind", k)}>
              {k}s
            </button>
          ))}
        </div>
        <input type="search" placeholder="Search name or description" aria-label="search" value={search} onChange={(e) => set("search", e.target.value)} />
      </div>
      {offered.length > 0 && (
        <div className="chips" role="group" aria-label="filter by label" data-testid="labels">
          <span>Labels:</span>
          {offered.map((l) => (
            <button key={l} type="button" className="chip" aria-pressed={labels.includes(l)} onClick={() => toggle(l)}>
              {l}
            </button>
          ))}
          {labels.length > 0 && (
            <button type="button" onClick={() => set("label", "")}>Clear labels</button>
          )}
        </div>
      )}
      <Problems error={all.error ?? list.error} />
      {(all.loading || list.loading) && <p className="muted">Loading…</p>}
      {rows && rows.length === 0 && <p>Nothing matches{labels.length ? ` the labels ${labels.join(", ")}` : ""}.</p>}
      {rows && rows.length > 0 && (
        <table data-testid="entries">
          <thead><tr><th>Name</th><th>Latest</th><th>Description</th><th>Labels</th></tr></thead>
          <tbody>
            {rows.slice(0, SHOWN).map((e) => (
              <tr key={e.ref}>
                <td><Link to={`/catalogue/${q(e.kind)}/${q(e.name)}`}>{e.name}</Link></td>
                <td>{e.latest}</td>
                <td>{e.description}</td>
                <td>{Object.entries(e.labels ?? {}).map(([k, v]) => <span className="label" key={k}>{k}: {v}</span>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && rows.length > SHOWN && (
        <p className="note" role="status">
          Showing the first {SHOWN} of {rows.length} entries: search or pick a label to see the others.
        </p>
      )}
    </div>
  );
}
