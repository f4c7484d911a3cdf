// Server-side validation as the graph changes (debounced), and where each problem belongs on the canvas.
import { useEffect, useState } from "react";
import { api, type Problem } from "../api";
import { specOf, type SpecDoc } from "./doc";

export interface Located {
  problem: Problem;
  step?: string;
  /** Dotted path of a parameter under the step's `with` ("name", "grid.C"). */
  field?: string;
  /** Input port of the step the problem is about. */
  input?: string;
}

export interface Validation {
  checking: boolean;
  problems: Located[];
  warnings: Located[];
}

const STEP = /^(?:spec\.)?steps\[(\d+)\](.*)$/;

/** The step (and its parameter field or input) a problem's `where` names. The compiler writes
 * `pipeline/x > steps[1] (train) > with.n_estimators` (or `> inputs.dataset`); schema errors are written
 * `pipeline (Pipeline x) > spec.steps[0].id`. Problems inside a nested pipeline belong to its step. */
export function locate(problem: Problem, doc: SpecDoc): Located {
  const segments = problem.where.split(" > ");
  for (let i = 0; i < segments.length; i++) {
    const m = STEP.exec(segments[i]);
    if (!m) continue;
    const step = doc.spec.steps[Number(m[1])]?.id;
    if (!step) return { problem };
    const rest = m[2].startsWith(".") ? m[2].slice(1) : segments[i + 1] ?? "";
    if (rest.startsWith("with.") || rest.startsWith("with[")) return { problem, step, field: rest.slice(rest[4] === "." ? 5 : 4) };
    if (rest.startsWith("inputs.")) return { problem, step, input: rest.slice(7) };
    return { problem, step };
  }
  return { problem };
}

/** Validate `doc` on the server 500 ms after it last changed; an empty graph is not sent. */
export function useValidation(doc: SpecDoc, enabled: boolean): Validation {
  const [result, setResult] = useState<Validation>({ checking: false, problems: [], warnings: [] });
  useEffect(() => {
    if (!enabled || !doc.spec.steps.length) {
      setResult({ checking: false, problems: [], warnings: [] });
      return;
    }
    let live = true;
    setResult((r) => ({ ...r, checking: true }));
    const timer = setTimeout(() => {
      api.post<{ warnings: Problem[] }>("/api/v1/validate", { pipeline: specOf(doc) }).then(
        (ok) => live && setResult({ checking: false, problems: [], warnings: (ok.warnings ?? []).map((w) => locate(w, doc)) }),
        (e: unknown) => {
          if (!live) return;
          const problems = (e as { problems?: Problem[] }).problems ?? [{ what: String(e), where: "", fix: "" }];
          setResult({ checking: false, problems: problems.map((p) => locate(p, doc)), warnings: [] });
        },
      );
    }, 500);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [doc, enabled]);
  return result;
}
