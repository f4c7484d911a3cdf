// The AI assistant in the playbook editor: describe the step, the platform asks its model
// (POST /api/v1/assist, kind playbook), checks and test-runs what it wrote, and shows the result; "Use this
// draft" fills the editor with it. Nothing is saved here: saving stays the editor's own Save.
import { useState } from "react";
import { api, type Problem } from "../api";
import { Problems } from "../components";
import type { SpecDoc } from "./draft";

interface AssistAnswer {
  conversation: string;
  valid: boolean;
  ref: string | null;
  spec: SpecDoc | null;
  yaml: string;
  problems: Problem[];
  repairs: number;
  notes: string[];
  tried: { status: string; outputs: Record<string, unknown> } | null;
}

export default function AssistantPanel({ onDraft }: { onDraft: (doc: SpecDoc) => void }) {
  const [prompt, setPrompt] = useState("");
  const [conversation, setConversation] = useState<string | undefined>(undefined);
  const [answer, setAnswer] = useState<AssistAnswer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const ask = async () => {
    setBusy(true);
    setError(null);
    try {
      const a = await api.post<AssistAnswer>("/api/v1/assist", {
        prompt,
        kind: "playbook",
        ...(conversation ? { conversation } : {}),
      });
      setAnswer(a);
      setConversation(a.conversation);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="assistant" aria-labelledby="assistant-title">
      <h2 id="assistant-title">AI assistant</h2>
      <label htmlFor="assistant-prompt">Describe what this step does</label>
      <textarea
        id="assistant-prompt"
        aria-label="AI assistant: describe what this step does"
        placeholder="e.g. count the words of a text and give the most frequent one"
        value={prompt}
        maxLength={8000}
        rows={2}
        onChange={(e) => setPrompt(e.target.value)}
      />
      <div className="toolbar">
        <button type="button" disabled={busy || !prompt.trim()} onClick={ask}>
          {conversation ? "Ask again" : "Ask the assistant"}
        </button>
        {conversation && (
          <button type="button" disabled={busy} onClick={() => { setConversation(undefined); setAnswer(null); }}>
            New conversation
          </button>
        )}
      </div>
      {busy && <p role="status">Writing, checking and test-running the playbook…</p>}
      <Problems error={error} />
      {answer && (
        <div className="assistant-answer" aria-label="assistant answer">
          {answer.valid && (
            <p className="ok" role="status">
              ✓ <code>{answer.ref}</code> is valid{answer.tried ? " and ran once on its samples" : ""} ({answer.repairs} repair
              {answer.repairs === 1 ? "" : "s"})
            </p>
          )}
          {!answer.valid && (
            <ul className="located-problems" role="alert" aria-label="assistant problems">
              {answer.problems.map((p, i) => (
                <li key={i} className="problem">
                  {p.where && <strong>{p.where}: </strong>}
                  {p.what}
                  {p.fix && <div className="fix">Fix: {p.fix}</div>}
                </li>
              ))}
            </ul>
          )}
          {answer.notes.map((n, i) => (
            <p key={i} className="muted">{n}</p>
          ))}
          {answer.tried && (
            <pre className="value" aria-label="test run outputs">{JSON.stringify(answer.tried.outputs, null, 2)}</pre>
          )}
          {answer.yaml && <pre className="value" aria-label="assistant spec">{answer.yaml}</pre>}
          {answer.valid && answer.spec && (
            <button type="button" onClick={() => answer.spec && onDraft(answer.spec)}>
              Use this draft
            </button>
          )}
        </div>
      )}
    </section>
  );
}
