// The launch dialog: target (a provider, or auto with constraints), parameters (the pipeline's schema),
// validation as you edit (problems on their fields), then the plan — placement, cost and the generated
// Terraform/manifests — before Launch is offered.
import { useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { parse } from "yaml";
import { api, ApiError, q, type EntryVersion, type Problem, type Run, type Target } from "../api";
import { Problems } from "../components";
import ParamForm, { type JsonSchema } from "../forms/ParamForm";
import "./launch.css";
import PlanPreview, { type Plan } from "./PlanPreview";
import TargetChoice from "./TargetChoice";
import { fieldProblems, NO_CONSTRAINTS, targetOf, typed, unavailable, type AutoConstraints } from "./target";

export interface LaunchDialogProps {
  /** A catalogue ref (`pipeline/iris-classifier@1.0.0`) or inline spec documents. */
  pipeline: string | Record<string, unknown> | Record<string, unknown>[];
  /** Closes the dialog without launching. */
  onClose: () => void;
  /** Initial parameter values (default: none, the pipeline's defaults apply). */
  parameters?: Record<string, unknown>;
}

interface Doc {
  kind?: string;
  metadata?: { name?: string };
  spec?: { parameters?: JsonSchema };
}
interface Validation {
  status: string;
  steps: number;
  warnings: Problem[];
}

const RUNNABLE = new Set(["Pipeline", "MetaPipeline"]);
const CHECK_AFTER_MS = 350;

/** The document that runs: the ref's, or the last Pipeline/MetaPipeline of inline documents. */
async function loadDoc(pipeline: LaunchDialogProps["pipeline"]): Promise<Doc> {
  if (typeof pipeline !== "string") {
    const docs = (Array.isArray(pipeline) ? pipeline : [pipeline]) as Doc[];
    return [...docs].reverse().find((d) => RUNNABLE.has(d.kind ?? "")) ?? docs[docs.length - 1] ?? {};
  }
  const [ref, version] = pipeline.split("@");
  const [kind, name] = ref.split("/");
  const entry = await api.get<EntryVersion>(`/api/v1/catalogue/${q(kind)}/${q(name)}${version ? `?version=${q(version)}` : ""}`);
  return (parse(entry.text) as Doc) ?? {};
}

/** A modal dialog; Escape or Cancel closes it. */
export default function LaunchDialog({ pipeline, onClose, parameters }: LaunchDialogProps) {
  const navigate = useNavigate();
  const [doc, setDoc] = useState<Doc | null>(null);
  const [targets, setTargets] = useState<Target[]>([]);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [provider, setProvider] = useState("local");
  const [constraints, setConstraints] = useState<AutoConstraints>(NO_CONSTRAINTS);
  const [values, setValues] = useState<Record<string, unknown>>(parameters ?? {});
  const [checking, setChecking] = useState(false);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [plan, setPlan] = useState<Plan | null>(null);
  const [planning, setPlanning] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [launching, setLaunching] = useState(false);
  const dialog = useRef<HTMLDivElement>(null);
  const asked = useRef(0);

  useEffect(() => {
    loadDoc(pipeline).then(setDoc, setLoadError);
    api.get<Target[]>("/api/v1/targets").then(setTargets, setLoadError);
  }, [pipeline]);

  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    dialog.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && close.current();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const schema: JsonSchema = doc?.spec?.parameters ?? { type: "object", properties: {} };
  const body = () => ({ pipeline, parameters: typed(schema, values), target: targetOf(provider, constraints) });

  // validate on the server as the user edits (the latest answer wins); any change hides the plan
  useEffect(() => {
    if (!doc) return;
    setPlan(null);
    setError(null);
    const mine = ++asked.current;
    setChecking(true);
    const timer = window.setTimeout(() => {
      api.post<Validation>("/api/v1/validate", body()).then(
        (v) => {
          if (mine !== asked.current) return;
          setValidation(v);
          setProblems(v.warnings ?? []);
          setChecking(false);
        },
        (e: unknown) => {
          if (mine !== asked.current) return;
          setValidation(null);
          setProblems(e instanceof ApiError ? e.problems : [{ what: String(e), where: "", fix: "" }]);
          setChecking(false);
        },
      );
    }, CHECK_AFTER_MS);
    return () => window.clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [doc, values, provider, constraints]);

  const review = async () => {
    setPlanning(true);
    setError(null);
    try {
      setPlan(await api.post<Plan>("/api/v1/plan", body()));
    } catch (e) {
      setError(e);
    } finally {
      setPlanning(false);
    }
  };
  const launch = async () => {
    setLaunching(true);
    setError(null);
    try {
      const run = await api.post<Run>("/api/v1/runs", body());
      navigate(`/runs/${q(run.id)}`);
    } catch (e) {
      setError(e);
      setLaunching(false);
    }
  };

  const chosen = targets.find((t) => t.provider === provider);
  const blocked = chosen ? unavailable(chosen) : null;
  const { fields, other } = fieldProblems(problems);
  const valid = validation !== null && !checking;
  const name = doc?.metadata?.name ?? (typeof pipeline === "string" ? pipeline : "inline pipeline");
  return (
    <div className="dialog-backdrop">
      <div className="dialog launch-dialog" role="dialog" aria-modal="true" aria-labelledby="launch-title" tabIndex={-1} ref={dialog}>
        <h2 id="launch-title">Launch {name}</h2>
        <Problems error={loadError} />
        <section className="launch-target">
          <h3>Target</h3>
          <TargetChoice targets={targets} provider={provider} onProvider={setProvider} constraints={constraints} onConstraints={setConstraints} />
          {blocked && (
            <p className="target-reason" role="note">
              {provider} cannot launch now: {blocked}. Its plan can still be previewed.
            </p>
          )}
        </section>
        <section className="launch-params">
          <h3>Parameters</h3>
          {doc && Object.keys((schema.properties ?? {}) as object).length === 0 && <p className="muted">This pipeline has no parameters.</p>}
          {doc && <ParamForm schema={schema} value={values} onChange={setValues} problems={fields} idPrefix="launch" />}
        </section>
        <div className="validation" aria-live="polite" data-testid="validation">
          {checking ? (
            <span className="muted">Checking…</span>
          ) : validation ? (
            <span className="ok">Valid: {validation.steps} step(s){validation.warnings.length > 0 && `, ${validation.warnings.length} warning(s)`}</span>
          ) : Object.keys(fields).length > 0 ? (
            <span className="bad">Invalid: see the marked fields above.</span>
          ) : null}
        </div>
        {!checking && <Problems error={other.length ? new ApiError(422, other) : null} />}
        <Problems error={error} />
        {plan && (
          <section className="launch-plan">
            <h3>Plan</h3>
            <PlanPreview plan={plan} />
          </section>
        )}
        <div className="dialog-actions">
          <button onClick={onClose}>Cancel</button>
          {!plan ? (
            <button className="primary" onClick={review} disabled={!valid || planning}>
              {planning ? "Planning…" : "Review plan"}
            </button>
          ) : (
            <button className="primary" onClick={launch} disabled={launching || blocked !== null} title={blocked ?? undefined}>
              {launching ? "Launching…" : "Launch"}
            </button>
          )}
        </div>
      </div>
    </div>
  );
}
