import { useEffect, useRef, useState, type FocusEvent } from "react";

/** Is the focused element one a user types into (where every keystroke reports a change)? */
const typing = () => {
  const el = document.activeElement;
  return el instanceof HTMLTextAreaElement || (el instanceof HTMLInputElement && !["checkbox", "radio"].includes(el.type));
};

/**
 * A value edited through a shared form that reports every keystroke (SchemaBuilder, TargetPicker),
 * committed as ONE undoable change: at once for a discrete edit (a select, a checkbox, a button, or when
 * `immediate(committed, next)` says so), else once typing settles or the focus leaves the form.
 * Put `onBlur` on an element around the form.
 */
export function useDraft<T>(value: T, commit: (next: T, prev: T) => void, immediate?: (prev: T, next: T) => boolean) {
  const [draft, setDraft] = useState<T>(value);
  const latest = useRef<T>(value);
  const committed = useRef<T>(value);
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const save = useRef(commit);
  save.current = commit;
  const seen = JSON.stringify(value);
  useEffect(() => {
    // changed from outside (undo, the YAML view) or by our own commit: show it
    clearTimeout(timer.current);
    setDraft(value);
    latest.current = value;
    committed.current = value;
  }, [seen]);
  const flush = (next: T) => {
    clearTimeout(timer.current);
    if (JSON.stringify(next) === JSON.stringify(committed.current)) return;
    const prev = committed.current;
    committed.current = next;
    save.current(next, prev);
  };
  const flushRef = useRef(flush);
  flushRef.current = flush;
  useEffect(() => () => flushRef.current(latest.current), []); // an edit still settling is kept
  const onChange = (next: T) => {
    setDraft(next);
    latest.current = next;
    clearTimeout(timer.current);
    if (typing() && !immediate?.(committed.current, next)) timer.current = setTimeout(() => flush(next), 1200);
    else flush(next);
  };
  const onBlur = (e: FocusEvent<HTMLElement>) => {
    if (!e.currentTarget.contains(e.relatedTarget as Node | null)) flush(latest.current);
  };
  return { draft, onChange, onBlur };
}
