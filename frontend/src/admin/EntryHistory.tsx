// The catalogue entry page's history, diff and used-by parts (rendered by pages/Entry.tsx).
import { useState } from "react";
import { Link } from "react-router";
import { api, q, type Change, type Diff, type EntryVersion } from "../api";
import { Problems, useLoad } from "../components";
import "./admin.css";

/** A link to `kind/name@version` (as `used_by` and step `uses` write it) on its entry page. */
export function RefLink({ refText }: { refText: string }) {
  const [path, version] = refText.split("@");
  const [kind, name] = path.split("/");
  if (!kind || !name) return <>{refText}</>;
  const exact = version && /^\d+\.\d+\.\d+/.test(version) ? `?version=${q(version)}` : "";
  return <Link to={`/catalogue/${q(kind)}/${q(name)}${exact}`}>{refText}</Link>;
}

/** Which versions of which entries use this one, each linking to that version. */
export function UsedBy({ entry }: { entry: EntryVersion }) {
  return (
    <section className="used-by" aria-labelledby="used-by-h">
      <h3 id="used-by-h">Used by</h3>
      {entry.used_by.length === 0 ? (
        <p className="muted">Nothing in the catalogue uses it.</p>
      ) : (
        <ul>
          {entry.used_by.map((u) => (
            <li key={`${u.by} ${u.uses}`}>
              <RefLink refText={u.by} /> (as <code>{u.uses}</code>)
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Every commit that changed the entry; a version opens the entry at that version. */
export function History({ kind, name }: { kind: string; name: string }) {
  const history = useLoad(() => api.get<Change[]>(`/api/v1/catalogue/${q(kind)}/${q(name)}/history`), [kind, name]);
  return (
    <section className="history" aria-labelledby="history-h">
      <h3 id="history-h">History</h3>
      <Problems error={history.error} />
      <ul>
        {history.data?.map((c) => (
          <li key={c.commit}>
            <code>{c.commit.slice(0, 8)}</code>{" "}
            {c.version ? <Link to={`/catalogue/${q(kind)}/${q(name)}?version=${q(c.version)}`}>{c.version}</Link> : null}{" "}
            {c.date} {c.author}: {c.message.split("\n")[0]}
          </li>
        ))}
      </ul>
    </section>
  );
}

function lineClass(line: string): string {
  if (line.startsWith("+++") || line.startsWith("---")) return "meta";
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  return "";
}

/** Pick two versions and read their unified diff, added lines green and removed ones red (each line a
 * text node: nothing from the server is read as HTML). */
export function VersionDiff({ kind, name, entry }: { kind: string; name: string; entry: EntryVersion }) {
  const versions = entry.versions;
  const at = versions.indexOf(entry.version);
  const [from, setFrom] = useState(versions[Math.max(0, at - 1)] ?? entry.version);
  const [to, setTo] = useState(entry.version);
  const diff = useLoad(
    () => api.get<Diff>(`/api/v1/catalogue/${q(kind)}/${q(name)}/diff?from=${q(from)}&to=${q(to)}`),
    [kind, name, from, to],
  );
  if (versions.length < 2) {
    return (
      <section className="diff-section" aria-labelledby="diff-h">
        <h3 id="diff-h">Compare versions</h3>
        <p className="muted">Only one version ({entry.version}): nothing to compare yet.</p>
      </section>
    );
  }
  const lines = diff.data?.diff ? diff.data.diff.replace(/\n$/, "").split("\n") : [];
  return (
    <section className="diff-section" aria-labelledby="diff-h" data-testid="diff">
      <h3 id="diff-h">Compare versions</h3>
      <div className="diff-pick">
        <label>
          From{" "}
          <select aria-label="diff from" value={from} onChange={(e) => setFrom(e.target.value)}>
            {versions.map((v) => <option key={v}>{v}</option>)}
          </select>
        </label>
        <label>
          To{" "}
          <select aria-label="diff to" value={to} onChange={(e) => setTo(e.target.value)}>
            {versions.map((v) => <option key={v}>{v}</option>)}
          </select>
        </label>
        {diff.data && (
          <span className="muted">
            {lines.filter((l) => lineClass(l) === "add").length} added,{" "}
            {lines.filter((l) => lineClass(l) === "del").length} removed
          </span>
        )}
      </div>
      <Problems error={diff.error} />
      {diff.data && lines.length === 0 && <p>No difference between {from} and {to}.</p>}
      {lines.length > 0 && (
        <div className="diff" role="region" aria-label={`diff ${from} to ${to}`} tabIndex={0}>
          {lines.map((line, i) => (
            <div key={i} className={lineClass(line)}>{line || " "}</div>
          ))}
        </div>
      )}
    </section>
  );
}
