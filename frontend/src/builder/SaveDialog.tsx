import { useState } from "react";
import { api } from "../api";
import { Problems } from "../components";
import { bump, highest, specOf, type SpecDoc } from "./doc";

export interface Saved {
  ref: string;
  version: string;
}

/** Save as a new version: a commit message and the version (a patch bump suggested; minor or major). */
export default function SaveDialog({ doc, versions, base, onSaved, onClose }: {
  doc: SpecDoc;
  /** The entry's versions in the catalogue (empty: a new entry). */
  versions: string[];
  /** The version the edit started from (a stale one is refused). */
  base?: string;
  onSaved: (s: Saved) => void;
  onClose: () => void;
}) {
  const latest = highest(versions);
  const [part, setPart] = useState<"patch" | "minor" | "major">("patch");
  const [first, setFirst] = useState(doc.metadata.version || "0.1.0");
  const [message, setMessage] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const version = latest ? bump(latest, part) : first;
  const save = async () => {
    setBusy(true);
    setError(null);
    const spec = specOf({ ...doc, metadata: { ...doc.metadata, version } });
    try {
      await api.post("/api/v1/catalogue", { spec, message: message.trim() || undefined, base: latest ? base : undefined });
      onSaved({ ref: `${doc.kind.toLowerCase()}/${doc.metadata.name}@${version}`, version });
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <div className="dialog-backdrop">
      <div className="dialog save-dialog" role="dialog" aria-modal="true" aria-label="Save a version">
        <h2>Save {doc.metadata.name}</h2>
        {latest ? (
          <fieldset>
            <legend>Next version (latest is {latest})</legend>
            {(["patch", "minor", "major"] as const).map((p) => (
              <label key={p}>
                <input type="radio" name="bump" checked={part === p} onChange={() => setPart(p)} /> {p} → {bump(latest, p)}
              </label>
            ))}
          </fieldset>
        ) : (
          <label>
            Version <input aria-label="version" value={first} onChange={(e) => setFirst(e.target.value)} />
          </label>
        )}
        <label>
          Commit message
          <textarea aria-label="commit message" rows={3} value={message} onChange={(e) => setMessage(e.target.value)} autoFocus />
        </label>
        <Problems error={error} />
        <div className="toolbar">
          <button className="primary" disabled={busy} onClick={save}>Save {version}</button>
          <button onClick={onClose}>Cancel</button>
        </div>
      </div>
    </div>
  );
}
