import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { parseDocument, stringify } from "yaml";
import { specOf, type SpecDoc } from "./doc";

const CodeEditor = lazy(() => import("../code/CodeEditor"));

/** The document as YAML; an edit is parsed, checked and applied as one change once typing settles (or with
 * Apply). A parse error is shown with its line and column, and changes nothing. */
export function readYaml(text: string, kind: SpecDoc["kind"]): { doc?: SpecDoc; error?: string } {
  const parsed = parseDocument(text, { prettyErrors: true });
  if (parsed.errors.length) {
    const e = parsed.errors[0];
    const at = e.linePos?.[0];
    return { error: `${at ? `line ${at.line}, column ${at.col}: ` : ""}${e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")}` };
  }
  const doc = parsed.toJS() as SpecDoc | null;
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return { error: "line 1: the document must be a mapping (apiVersion, kind, metadata, spec)" };
  if (doc.kind !== kind) return { error: `kind: must stay ${kind} (start a new graph for another kind)` };
  if (!doc.metadata || typeof doc.metadata !== "object" || typeof doc.metadata.name !== "string") return { error: "metadata.name: give the graph's name" };
  if (!doc.spec || typeof doc.spec !== "object" || !Array.isArray(doc.spec.steps)) return { error: "spec.steps: give a list of steps (- id: ..., uses: ...)" };
  for (const [i, s] of doc.spec.steps.entries()) {
    if (!s || typeof s !== "object" || typeof s.id !== "string" || typeof s.uses !== "string")
      return { error: `spec.steps[${i}]: each step needs an id and uses (strings)` };
  }
  const ids = doc.spec.steps.map((s) => s.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) return { error: `spec.steps: the step id ${dup} is used twice (step ids must be unique)` };
  return { doc };
}

export const yamlOf = (doc: SpecDoc) => stringify(specOf(doc), { lineWidth: 0 });

export default function YamlPane({ doc, onApply, readOnly }: { doc: SpecDoc; onApply: (d: SpecDoc) => void; readOnly?: boolean }) {
  const [text, setText] = useState(() => yamlOf(doc));
  const [error, setError] = useState("");
  const mine = useRef<SpecDoc | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => {
    if (doc === mine.current) return; // this text made it: leave the text (and the cursor) as typed
    setText(yamlOf(doc));
    setError("");
  }, [doc]);
  const apply = (value: string) => {
    clearTimeout(timer.current);
    const read = readYaml(value, doc.kind);
    setError(read.error ?? "");
    if (read.doc && yamlOf(read.doc) !== yamlOf(doc)) {
      mine.current = read.doc;
      onApply(read.doc);
    }
  };
  useEffect(() => () => clearTimeout(timer.current), []);
  return (
    <section className="yaml-pane" aria-label="YAML view">
      <div className="toolbar">
        <strong>YAML</strong>
        {!readOnly && <button onClick={() => apply(text)}>Apply</button>}
        <span className="muted">edits apply as one change when typing pauses</span>
      </div>
      {error && <div className="problem" role="alert" data-testid="yaml-error"><strong>Not applied:</strong> {error}</div>}
      <Suspense fallback={<pre>{text}</pre>}>
        <CodeEditor
          value={text}
          language="yaml"
          readOnly={readOnly}
          ariaLabel="pipeline YAML"
          height="60vh"
          onChange={readOnly ? undefined : (v) => {
            setText(v);
            clearTimeout(timer.current);
            timer.current = setTimeout(() => apply(v), 800);
          }}
        />
      </Suspense>
    </section>
  );
}
