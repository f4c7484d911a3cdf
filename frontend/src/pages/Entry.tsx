import { lazy, Suspense, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { parse } from "yaml";
import { api, q, type EntryVersion } from "../api";
import { Problems, useLoad } from "../components";
import { History, RefLink, UsedBy, VersionDiff } from "../admin/EntryHistory";
import { TryParameters, TryStepDetails } from "../forms/TryParameters";
import LaunchDialog from "../launch/LaunchDialog";

const CodeEditor = lazy(() => import("../code/CodeEditor"));

interface Port {
  type?: string;
  description?: string;
}
interface ParamSchema {
  type?: string;
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
}
interface Doc {
  metadata?: { name?: string; description?: string; labels?: Record<string, string> };
  spec?: {
    runtime?: string;
    inputs?: Record<string, Port>;
    outputs?: Record<string, Port>;
    parameters?: { properties?: Record<string, ParamSchema>; required?: string[] };
    steps?: { id: string; uses?: string; inputs?: Record<string, string>; with?: Record<string, unknown> }[];
  };
}

function Ports({ title, ports }: { title: string; ports?: Record<string, Port> }) {
  if (!ports || !Object.keys(ports).length) return null;
  return (
    <section className={title.toLowerCase()}>
      <h3>{title}</h3>
      <ul>
        {Object.entries(ports).map(([name, p]) => (
          <li key={name}><code>{name}</code> <span className="type">{p.type}</span> {p.description}</li>
        ))}
      </ul>
    </section>
  );
}

/** One catalogue entry at a version: its ports, parameters, docs, steps, history and source. */
export default function EntryPage() {
  const { kind = "", name = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const version = params.get("version") ?? "";
  const entry = useLoad(
    () => api.get<EntryVersion>(`/api/v1/catalogue/${q(kind)}/${q(name)}${version ? `?version=${q(version)}` : ""}`),
    [kind, name, version],
  );
  const [launching, setLaunching] = useState(false);
  let doc: Doc = {};
  let parseError: unknown = null;
  if (entry.data) {
    try {
      doc = (parse(entry.data.text) as Doc) ?? {};
    } catch (e) {
      parseError = e;
    }
  }
  const props = doc.spec?.parameters?.properties ?? {};
  return (
    <div className="entry">
      <p><Link to={`/catalogue?kind=${q(kind)}`}>Catalogue</Link> / {kind}</p>
      <h1>{name} {entry.data && <small className="version">{entry.data.version}</small>}</h1>
      <Problems error={entry.error ?? parseError} />
      {entry.data && (
        <>
          <div className="toolbar">
            <label>
              Version{" "}
              <select aria-label="version" value={entry.data.version} onChange={(e) => setParams({ version: e.target.value })}>
                {entry.data.versions.map((v) => <option key={v}>{v}</option>)}
              </select>
            </label>
            {kind !== "playbook" && <button className="primary" onClick={() => setLaunching(true)}>Launch…</button>}
            {(kind === "pipeline" || kind === "metapipeline") && (
              <Link to={`/builder/${q(kind)}/${q(name)}?version=${q(entry.data.version)}`}>Open in builder</Link>
            )}
            {kind === "playbook" && typeof (doc.spec as { python?: { code?: unknown } } | undefined)?.python?.code === "string" && (
              <Link to={`/editor/${q(name)}`}>Edit in the playbook editor</Link>
            )}
          </div>
          {launching && <LaunchDialog pipeline={entry.data.ref} onClose={() => setLaunching(false)} />}
          <p className="docs">{doc.metadata?.description}</p>
          <Ports title="Inputs" ports={doc.spec?.inputs} />
          <Ports title="Outputs" ports={doc.spec?.outputs} />
          {Object.keys(props).length > 0 && (
            <section className="parameters">
              <h3>Parameters</h3>
              <table>
                <thead><tr><th>Name</th><th>Type</th><th>Default</th><th>Description</th></tr></thead>
                <tbody>
                  {Object.entries(props).map(([p, s]) => (
                    <tr key={p}>
                      <td><code>{p}</code>{doc.spec?.parameters?.required?.includes(p) && " *"}</td>
                      <td>{s.enum ? s.enum.join(" | ") : s.type}{s.minimum !== undefined && ` ≥ ${s.minimum}`}{s.maximum !== undefined && ` ≤ ${s.maximum}`}</td>
                      <td>{s.default === undefined ? "" : JSON.stringify(s.default)}</td>
                      <td>{s.title && <strong>{s.title}. </strong>}{s.description}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          )}
          {doc.spec && (
            <TryParameters key={entry.data.version} kind={kind} name={name} version={entry.data.version} spec={doc.spec as Record<string, never>} />
          )}
          {doc.spec?.steps && (
            <section className="steps">
              <h3>Steps</h3>
              <ol>
                {doc.spec.steps.map((s, i) => {
                  const [ref] = (s.uses ?? "").split("@");
                  const [k, n] = ref.split("/");
                  return (
                    <li key={s.id}>
                      <code>{s.id}</code> uses <RefLink refText={s.uses ?? ""} />
                      {k && n && (
                        <TryStepDetails key={entry.data!.version} doc={doc as Record<string, never>} index={i} />
                      )}
                    </li>
                  );
                })}
              </ol>
            </section>
          )}
          <UsedBy entry={entry.data} />
          <History kind={kind} name={name} />
          <VersionDiff key={entry.data.version} kind={kind} name={name} entry={entry.data} />
          <details className="source">
            <summary>Source (YAML)</summary>
            <Suspense fallback={<pre>{entry.data.text}</pre>}>
              <CodeEditor value={entry.data.text} language="yaml" readOnly ariaLabel="YAML source" />
            </Suspense>
          </details>
        </>
      )}
    </div>
  );
}
