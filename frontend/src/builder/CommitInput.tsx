import { useEffect, useState } from "react";

/** A text field whose edit becomes one change when it is done (blur or Enter), not one per keystroke;
 * Escape puts the value back. `check` says why a value cannot be taken (shown, nothing committed). */
export default function CommitInput({ value, onCommit, label, check, disabled, id }: {
  value: string;
  onCommit: (v: string) => void;
  label: string;
  check?: (v: string) => string;
  disabled?: boolean;
  id?: string;
}) {
  const [draft, setDraft] = useState(value);
  const [problem, setProblem] = useState("");
  useEffect(() => {
    setDraft(value);
    setProblem("");
  }, [value]);
  const commit = () => {
    if (draft === value) return setProblem("");
    const why = check?.(draft) ?? "";
    setProblem(why);
    if (!why) onCommit(draft);
  };
  return (
    <>
      <input
        id={id}
        aria-label={label}
        value={draft}
        disabled={disabled}
        aria-invalid={problem ? true : undefined}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === "Enter") commit();
          if (e.key === "Escape") setDraft(value);
        }}
      />
      {problem && <span className="field-problem" role="alert">{problem}</span>}
    </>
  );
}
