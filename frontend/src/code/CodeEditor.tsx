// A code editor (CodeMirror 6), loaded only when one is shown: `const CodeEditor = lazy(() => import(...))`.
// CodeMirror injects its theme at run time; inside a shadow root it uses a constructed style sheet (the
// CSSOM), which the page's Content-Security-Policy (`style-src 'self'`) allows, where a <style> element
// would be refused.
import { json } from "@codemirror/lang-json";
import { python } from "@codemirror/lang-python";
import { yaml } from "@codemirror/lang-yaml";
import { EditorState, type Extension } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "react";

export type Language = "python" | "yaml" | "json" | "text";

export interface CodeEditorProps {
  value: string;
  /** Called with the whole text on every edit; absent or `readOnly`: the text cannot be changed. */
  onChange?: (value: string) => void;
  language: Language;
  readOnly?: boolean;
  /** The editor's accessible name (screen readers; tests find it by it). */
  ariaLabel: string;
  /** CSS height of the editor, e.g. "20em" (default: grows with its text). */
  height?: string;
}

const LANGUAGES: Record<Language, () => Extension> = { python, yaml, json, text: () => [] };

/** A CodeMirror editor in a shadow root. The DOM element inside carries `role="textbox"` and the label. */
export default function CodeEditor({ value, onChange, language, readOnly, ariaLabel, height }: CodeEditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  // texts this editor reported: a `value` equal to one of them is a late echo of typing, not a change
  // from outside (applying it would undo the keystrokes typed since)
  const echoes = useRef(new Set<string>());

  useEffect(() => {
    const element = host.current!;
    const root = element.shadowRoot ?? element.attachShadow({ mode: "open" });
    const mount = document.createElement("div");
    root.replaceChildren(mount);
    const editable = !readOnly && onChange !== undefined;
    view.current = new EditorView({
      root,
      parent: mount,
      state: EditorState.create({
        doc: value,
        extensions: [
          basicSetup,
          LANGUAGES[language](),
          EditorState.readOnly.of(!editable),
          EditorView.editable.of(editable),
          EditorView.contentAttributes.of({ "aria-label": ariaLabel }),
          EditorView.theme({ "&": { height: height ?? "auto", fontSize: "13px" }, ".cm-scroller": { overflow: "auto" } }),
          EditorView.updateListener.of((u) => {
            if (!u.docChanged) return;
            const text = u.state.doc.toString();
            echoes.current.add(text);
            if (echoes.current.size > 200) echoes.current.delete(echoes.current.values().next().value!);
            changed.current?.(text);
          }),
        ],
      }),
    });
    return () => view.current?.destroy();
    // the editor is made once per language/mode; text changes from outside are applied below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [language, readOnly, ariaLabel, height]);

  useEffect(() => {
    const v = view.current;
    if (v && v.state.doc.toString() !== value && !echoes.current.has(value)) {
      echoes.current.clear();
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
    }
  }, [value]);

  return <div ref={host} className="code-editor" data-language={language} />;
}
