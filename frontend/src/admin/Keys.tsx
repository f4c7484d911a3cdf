import { useRef, useState, type FormEvent } from "react";
import { api, ApiError, q, type KeyInfo, type Session } from "../api";
import { Problems, useLoad, when } from "../components";
import "./admin.css";

const SCOPES = ["read", "write", "admin"] as const;

interface SessionRow {
  id: string;
  key_id: string;
  scopes: string[];
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

/** What a session without the admin scope sees instead of the keys. */
function NeedsAdmin({ scopes }: { scopes: string[] }) {
  return (
    <div className="once" data-testid="needs-admin" role="status">
      <p><strong>Managing API keys needs the admin scope.</strong> This session has: {scopes.join(", ") || "no scope"}.</p>
      <p>
        Sign in with an admin API key and ask for it: open <code>/?token=ADMIN_KEY&amp;scopes=read,write,admin</code>{" "}
        (the admin key <code>mlops up</code> created at first start works).
      </p>
    </div>
  );
}

/** The key made just now: its value, shown this once, with a copy button. */
function Created({ created, onDone }: { created: KeyInfo & { key: string }; onDone: () => void }) {
  const [copied, setCopied] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("Copied.");
    } catch {
      setCopied("The browser refused to copy: select the key and copy it by hand.");
    }
  };
  return (
    <div className="once" role="alert" data-testid="created-key">
      <p><strong>Copy the key of {created.name} now: it is shown only this once.</strong> Store it in a password manager; whoever holds it acts with its scopes ({created.scopes.join(", ")}).</p>
      <p><code data-testid="key-value">{created.key}</code></p>
      <button type="button" onClick={copy}>Copy key</button> <button type="button" onClick={onDone}>I have stored it</button>{" "}
      <span role="status">{copied}</span>
    </div>
  );
}

/** API keys (list, create, revoke) and the live browser sessions; admin scope only. */
export default function Keys() {
  const [version, setVersion] = useState(0);
  const session = useLoad(() => api.get<Session>("/api/v1/session"), []);
  const keys = useLoad(() => api.get<KeyInfo[]>("/api/v1/keys"), [version]);
  const sessions = useLoad(() => api.get<SessionRow[]>("/api/v1/sessions"), [version]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["read", "write"]);
  const [created, setCreated] = useState<(KeyInfo & { key: string }) | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState("");
  const adminKey = useRef<HTMLInputElement>(null);

  if (keys.error instanceof ApiError && keys.error.status === 403) {
    return (
      <div className="keys">
        <h1>API keys</h1>
        <NeedsAdmin scopes={session.data?.scopes ?? []} />
      </div>
    );
  }

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone("");
    const field = adminKey.current;
    if (!field) return;
    try {
      // a browser session may not mint credentials: the admin key proves it, for this request only
      const made = await api.withKey<KeyInfo & { key: string }>(field.value.trim(), "POST", "/api/v1/keys", { name, scopes });
      setCreated(made);
      setName("");
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    } finally {
      field.value = "";
    }
  };

  const revoke = async (k: KeyInfo) => {
    if (!window.confirm(`Revoke the key ${k.name} (${k.id})? Its tokens and browser sessions stop working at once.`)) return;
    setError(null);
    setDone("");
    try {
      await api.delete(`/api/v1/keys/${q(k.id)}`);
      setDone(`Revoked ${k.name} (${k.id}).`);
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    }
  };

  const end = async (s: SessionRow) => {
    if (!window.confirm(`End the browser session ${s.id} of key ${s.key_id}?`)) return;
    setError(null);
    try {
      await api.delete(`/api/v1/sessions/${q(s.id)}`);
      setDone(`Ended session ${s.id}.`);
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    }
  };

  const toggle = (s: string) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <div className="keys">
      <h1>API keys</h1>
      {created && <Created created={created} onDone={() => setCreated(null)} />}
      <form className="admin-form" onSubmit={create} autoComplete="off" aria-label="create an API key">
        <label>
          Name
          <input name="key-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} pattern="[A-Za-z0-9_.@ \-]+" autoComplete="off" />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map((s) => (
            <label key={s} style={{ flexDirection: "row" }}>
              <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s}
            </label>
          ))}
        </fieldset>
        <label>
          Your admin API key (used once, not kept)
          <input ref={adminKey} name="admin-key" type="password" autoComplete="off" required aria-describedby="admin-key-help" />
        </label>
        <button type="submit" className="primary" disabled={!scopes.length}>Create key</button>
        <small id="admin-key-help">A browser session cannot create keys by itself (a stolen session must not turn into a lasting credential), so the gateway asks for an admin key.</small>
      </form>
      <Problems error={error} />
      {done && <p className="done" role="status">{done}</p>}
      <Problems error={keys.error} />
      {keys.data && (
        <table data-testid="keys">
          <caption className="muted">{keys.data.length} key{keys.data.length === 1 ? "" : "s"} (their values are never shown again)</caption>
          <thead><tr><th>Name</th><th>Id</th><th>Scopes</th><th>Created</th><th>State</th></tr></thead>
          <tbody>
            {keys.data.map((k) => (
              <tr key={k.id} data-key={k.id}>
                <td>{k.name}</td>
                <td><code>{k.id}</code></td>
                <td>{k.scopes.join(", ")}</td>
                <td>{when(k.created_at)}</td>
                <td>
                  {k.revoked_at ? (
                    <span className="muted">revoked {when(k.revoked_at)}</span>
                  ) : (
                    <button type="button" className="danger" onClick={() => revoke(k)} aria-label={`revoke ${k.name}`}>Revoke</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Browser sessions</h2>
      <Problems error={sessions.error} />
      {sessions.data && (
        <table data-testid="sessions">
          <thead><tr><th>Session</th><th>Key</th><th>Scopes</th><th>Last seen</th><th>Expires</th><th><span className="muted">Actions</span></th></tr></thead>
          <tbody>
            {sessions.data.map((s) => (
              <tr key={s.id}>
                <td><code>{s.id}</code>{s.id === session.data?.id && " (this one)"}</td>
                <td><code>{s.key_id}</code></td>
                <td>{s.scopes.join(", ")}</td>
                <td>{when(s.last_seen_at)}</td>
                <td>{when(s.expires_at)}</td>
                <td><button type="button" onClick={() => end(s)} aria-label={`end session ${s.id}`}>End</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
