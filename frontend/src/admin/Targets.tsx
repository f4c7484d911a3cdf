import { useState } from "react";
import { api, type Offer, type Target } from "../api";
import { Problems, useLoad } from "../components";
import "./admin.css";

const FIRST = 15; // offers shown per provider before "show all"

function money(o: Offer): string {
  return `${o.price_per_hour.toFixed(o.price_per_hour < 1 ? 3 : 2)} ${o.currency}/h`;
}

function size(o: Offer): string {
  const gpu = o.gpu_count ? `, ${o.gpu_count}× ${o.gpu_type || "GPU"} (${o.gpu_memory_gib} GiB)` : "";
  return `${o.vcpus} vCPU, ${o.memory_gib} GiB${gpu}`;
}

function State({ t }: { t: Target }) {
  if (t.available) return <span className="ok" data-state="available">available</span>;
  if (!t.installed) return <span className="bad" data-state="not-installed">not installed</span>;
  return <span className="bad" data-state="missing">not ready</span>;
}

function Provider({ t }: { t: Target }) {
  const [all, setAll] = useState(false);
  const offers = [...(t.offers ?? [])].sort((a, b) => a.price_per_hour - b.price_per_hour);
  const shown = all ? offers : offers.slice(0, FIRST);
  return (
    <section className="provider" data-provider={t.provider} aria-labelledby={`p-${t.provider}`}>
      <h2 id={`p-${t.provider}`}>{t.provider} <State t={t} /></h2>
      {t.reason && <p>{t.reason}</p>}
      {t.missing.length > 0 && (
        <div data-testid="missing">
          <p>Missing (set these on the gateway's machine, then reload):</p>
          <ul>{t.missing.map((m) => <li key={m}><code>{m}</code></li>)}</ul>
        </div>
      )}
      <p className="muted">
        Credentials: {t.credentials === false ? "missing" : t.credentials ? "present" : "not needed"}
        {t.terraform !== null && t.terraform !== undefined && <> · terraform: {t.terraform ? "present" : "missing"}</>}
        {t.tools && Object.entries(t.tools).filter(([k]) => k !== "terraform").map(([k, v]) => <span key={k}> · {k}: {v ? "present" : "missing"}</span>)}
      </p>
      {t.notes?.map((n) => <p key={n} className="note">{n}</p>)}
      {t.sheet && (
        <p className="muted">
          Prices: {t.sheet.source ?? "price sheet"}{t.sheet.date && `, ${t.sheet.date}`}
          {t.sheet.error && <span className="bad"> ({t.sheet.error})</span>}
        </p>
      )}
      {offers.length > 0 ? (
        <table>
          <caption className="muted">{offers.length} offer{offers.length > 1 ? "s" : ""}, cheapest first</caption>
          <thead><tr><th>Offer</th><th>Size</th><th>Region</th><th className="price">Price</th></tr></thead>
          <tbody>
            {shown.map((o) => (
              <tr key={`${o.id} ${o.region}`}>
                <td><code>{o.id}</code></td>
                <td>{size(o)}</td>
                <td>{o.region}</td>
                <td className="price">{money(o)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">No offers listed.</p>
      )}
      {offers.length > FIRST && (
        <p>
          {all ? `All ${offers.length} offers shown.` : `The ${FIRST} cheapest of ${offers.length} offers shown.`}{" "}
          <button type="button" onClick={() => setAll(!all)}>{all ? "Show fewer" : `Show all ${offers.length}`}</button>
        </p>
      )}
    </section>
  );
}

/** Every target provider: whether it can be used now (and what is missing, by name only), its offers and
 * prices, cheapest first. */
export default function Targets() {
  const targets = useLoad(() => api.get<Target[]>("/api/v1/targets"), []);
  const ready = (targets.data ?? []).filter((t) => t.available);
  const cheapest = ready
    .flatMap((t) => t.offers ?? [])
    .sort((a, b) => a.price_per_hour - b.price_per_hour)[0];
  return (
    <div className="targets">
      <h1>Targets</h1>
      <Problems error={targets.error} />
      {targets.loading && <p className="muted">Loading…</p>}
      {targets.data && (
        <p data-testid="summary">
          {ready.length} of {targets.data.length} providers can be used now
          {ready.length > 0 && <> ({ready.map((t) => t.provider).join(", ")})</>}.
          {cheapest && (
            <>
              {" "}Cheapest available offer: <strong>{cheapest.provider} {cheapest.id}</strong> ({size(cheapest)}) at {money(cheapest)}.
              With target <code>auto</code>, each step gets the cheapest available offer that fits its needs; the
              launch dialog shows the choice for a pipeline.
            </>
          )}
        </p>
      )}
      {targets.data?.map((t) => <Provider key={t.provider} t={t} />)}
    </div>
  );
}
