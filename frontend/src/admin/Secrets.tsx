import { useRef, useState, type FormEvent } from "react";
import { api, ApiError, q, type SecretInfo } from "../api";
import { Problems, useLoad, when } from "../components";
import "./admin.css";

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,99}$/;

/** The secrets runs use as `${{ secrets.NAME }}`: names and times only. A value is write-only: typed in
 * a password field (no autocomplete), sent once, cleared, never shown or kept by the page. */
export default function Secrets() {
  const [version, setVersion] = useState(0);
  const list = useLoad(() => api.get<SecretInfo[]>("/api/v1/secrets"), [version]);
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);
  const value = useRef<HTMLInputElement>(null);
  const nameField = useRef<HTMLInputElement>(null);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone("");
    const field = value.current;
    if (!field) return;
    if (!NAME.test(name)) {
      const what = `invalid secret name ${JSON.stringify(name.slice(0, 100))}`;
      const fix = "start with a letter or _, then letters, digits, _ or - (at most 100 characters)";
      setError(new ApiError(422, [{ what, where: "Name", fix }]));
      return;
    }
    const replacing = list.data?.some((s) => s.name === name);
    setBusy(true);
    try {
      // the value goes straight from the field to the request; only the name is kept in React's state
      await api.put<SecretInfo>(`/api/v1/secrets/${q(name)}`, { value: field.value });
      field.value = "";
      setDone(`${replacing ? "Replaced" : "Set"} secret ${name}.`);
      setName("");
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const replace = (n: string) => {
    setName(n);
    setDone("");
    value.current?.focus();
  };

  const remove = async (n: string) => {
    if (!window.confirm(`Delete the secret ${n}? Runs that use it will fail saying it is not set.`)) return;
    setError(null);
    setDone("");
    try {
      await api.delete(`/api/v1/secrets/${q(n)}`);
      setDone(`Deleted secret ${n}.`);
      setVersion((v) => v + 1);
    } catch (err) {
      setError(err);
    }
  };

  return (
    <div className="secrets">
      <h1>Secrets</h1>
      <p>
        Steps read a secret as <code>{"${{ secrets.NAME }}"}</code>. Values are stored encrypted on the gateway and
        are never shown again: to change one, set it anew.
      </p>
      <form className="admin-form" onSubmit={save} autoComplete="off" aria-label="set a secret">
        <label>
          Name
          <input ref={nameField} name="secret-name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} placeholder="HF_TOKEN" autoComplete="off" spellCheck={false} />
        </label>
        <label>
          Value (write-only)
          <input ref={value} name="secret-value" type="password" autoComplete="off" required minLength={4} data-lpignore="true" aria-describedby="secret-value-help" />
        </label>
        <button type="submit" className="primary" disabled={busy}>Save secret</button>
        <small id="secret-value-help">At least 4 characters; it replaces the value of a secret of the same name.</small>
      </form>
      <Problems error={error} />
      {done && <p className="done" role="status">{done}</p>}
      <Problems error={list.error} />
      {list.data && list.data.length === 0 && <p>No secrets yet.</p>}
      {list.data && list.data.length > 0 && (
        <table data-testid="secrets">
          <thead><tr><th>Name</th><th>Set</th><th>Last changed</th><th><span className="muted">Actions</span></th></tr></thead>
          <tbody>
            {list.data.map((s) => (
              <tr key={s.name} data-secret={s.name}>
                <td><code>{s.name}</code></td>
                <td>{when(s.created_at)}</td>
                <td>{when(s.updated_at)}</td>
                <td>
                  <button type="button" onClick={() => replace(s.name)} aria-label={`replace ${s.name}`}>Replace…</button>{" "}
                  <button type="button" className="danger" onClick={() => remove(s.name)} aria-label={`delete ${s.name}`}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
