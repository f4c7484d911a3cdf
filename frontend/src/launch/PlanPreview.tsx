// What a launch would do, before it is confirmed: where each step runs and why, the estimated cost, and
// each deployment's bundle (the Terraform JSON / Kubernetes manifests that would be applied), read-only,
// highlighted and downloadable. The plan comes from POST /api/v1/plan, which keeps secrets out of it.
import { lazy, Suspense, useState } from "react";
import type { Language } from "../code/CodeEditor";

const CodeEditor = lazy(() => import("../code/CodeEditor"));

interface Offer {
  id?: string;
  gpu_type?: string;
  gpu_count?: number;
  region?: string;
}
interface PlanStep {
  id: string;
  playbook: string;
  placement: { provider?: string; deployment?: string; offer?: Offer; price_per_hour?: number; why?: string } | null;
}
interface Bundle {
  deployment: string;
  provider: string;
  files: Record<string, string>;
  resources: { type?: string; name?: string }[];
  cost: { per_hour: number; hours: number | null; total: number | null };
}
export interface Plan {
  root: string;
  steps: PlanStep[];
  bundles: Bundle[];
  cost: { per_hour: number; total: number | null; currency: string };
}

/** Placement rows shown; a bigger plan says how many are not shown. */
const MAX_ROWS = 200;

function languageOf(path: string): Language {
  if (path.endsWith(".json")) return "json";
  if (path.endsWith(".yaml") || path.endsWith(".yml")) return "yaml";
  return "text";
}

/** Save `text` as a file from the browser (a Blob: nothing is written on the server). */
export function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function BundleView({ bundle }: { bundle: Bundle }) {
  const paths = Object.keys(bundle.files);
  const [open, setOpen] = useState(paths[0] ?? "");
  if (!paths.length) {
    return (
      <section className="bundle" data-deployment={bundle.deployment}>
        <h4>{bundle.deployment} <small>({bundle.provider})</small></h4>
        <p className="muted">Nothing is provisioned: {bundle.provider === "local" ? "the steps run on the gateway's machine" : "this provider renders no files"}.</p>
      </section>
    );
  }
  const fileName = (p: string) => `${bundle.deployment}_${p.replace(/[^A-Za-z0-9._-]+/g, "_")}`;
  return (
    <section className="bundle" data-deployment={bundle.deployment}>
      <h4>
        {bundle.deployment} <small>({bundle.provider}, ${bundle.cost.per_hour}/h{bundle.cost.total !== null && `, total $${bundle.cost.total}`})</small>
      </h4>
      {bundle.resources.length > 0 && (
        <p className="resources">
          Creates: {bundle.resources.map((r) => `${r.type ?? "?"}.${r.name ?? "?"}`).join(", ")}
        </p>
      )}
      <div className="bundle-files" role="tablist" aria-label={`files of ${bundle.deployment}`}>
        {paths.map((p) => (
          <button key={p} role="tab" aria-selected={open === p} className={open === p ? "active" : ""} onClick={() => setOpen(p)}>{p}</button>
        ))}
      </div>
      {open && (
        <div className="bundle-file" role="tabpanel" aria-label={open}>
          <div className="toolbar">
            <code>{open}</code>
            <button onClick={() => download(fileName(open), bundle.files[open])}>Download {open.split("/").pop()}</button>
          </div>
          <Suspense fallback={<pre>{bundle.files[open]}</pre>}>
            <CodeEditor key={open} value={bundle.files[open]} language={languageOf(open)} readOnly ariaLabel={`file ${open}`} height="22em" />
          </Suspense>
        </div>
      )}
    </section>
  );
}

/** The placed plan: cost, placement per step, and the bundles. */
export default function PlanPreview({ plan }: { plan: Plan }) {
  const rows = plan.steps.slice(0, MAX_ROWS);
  return (
    <div className="plan-preview" data-testid="plan">
      <p className="cost" data-testid="cost">
        Estimated cost: <strong>${plan.cost.per_hour}/h</strong>
        {plan.cost.total !== null ? <> · total <strong>${plan.cost.total}</strong></> : " · no total (a step declares no timeout)"}{" "}
        {plan.cost.currency}
      </p>
      <table className="placement">
        <thead><tr><th>Step</th><th>Runs on</th><th>Offer</th><th>$/h</th><th>Why</th></tr></thead>
        <tbody>
          {rows.map((s) => (
            <tr key={s.id}>
              <td>{s.id}</td>
              <td>{s.placement?.provider ?? "local"}</td>
              <td>{s.placement?.offer?.id}{s.placement?.offer?.region && ` (${s.placement.offer.region})`}</td>
              <td>{s.placement?.price_per_hour ?? 0}</td>
              <td className="why">{s.placement?.why}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {plan.steps.length > MAX_ROWS && (
        <p className="muted">{plan.steps.length - MAX_ROWS} more step(s) not shown here: download plan.json for all of them.</p>
      )}
      <button onClick={() => download("plan.json", JSON.stringify(plan, null, 2))}>Download plan.json</button>
      <h3>Deployments</h3>
      {plan.bundles.map((b) => <BundleView key={b.deployment} bundle={b} />)}
    </div>
  );
}
