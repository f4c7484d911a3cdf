import { useMemo, useState } from "react";
import type { Entry } from "../api";
import { DRAG_TYPE } from "./Canvas";
import type { Kind } from "./doc";

const SHOWN = 200;

/** What a graph of `kind` may use: playbooks and pipelines in a pipeline, (meta)pipelines in a metapipeline. */
export const usable = (kind: Kind): string[] => (kind === "metapipeline" ? ["pipeline", "metapipeline"] : ["playbook", "pipeline"]);

/** The searchable list of catalogue entries to drag onto the canvas (or add with their button). */
export default function Palette({ kind, entries, self, onAdd }: {
  kind: Kind;
  entries: Entry[];
  /** The graph's own name: it cannot use itself. */
  self: string;
  onAdd: (uses: string) => void;
}) {
  const [search, setSearch] = useState("");
  const found = useMemo(() => {
    const words = search.toLowerCase().split(/\s+/).filter(Boolean);
    return entries.filter((e) => {
      if (!usable(kind).includes(e.kind) || (e.kind === kind && e.name === self)) return false;
      const text = `${e.kind} ${e.name} ${e.description ?? ""} ${Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(" ")}`.toLowerCase();
      return words.every((w) => text.includes(w));
    });
  }, [entries, search, kind, self]);
  return (
    <aside className="palette" aria-label="palette">
      <input type="search" aria-label="search the palette" placeholder="Search…" value={search} onChange={(e) => setSearch(e.target.value)} />
      <ul>
        {found.slice(0, SHOWN).map((e) => {
          const uses = `${e.kind}/${e.name}@${e.latest}`;
          return (
            <li
              key={e.ref}
              className={`palette-item kind-${e.kind}`}
              draggable
              data-entry={uses}
              onDragStart={(ev) => {
                ev.dataTransfer.setData(DRAG_TYPE, uses);
                ev.dataTransfer.effectAllowed = "copy";
              }}
              title={e.description ?? ""}
            >
              <div>
                <span className="entry-kind">{e.kind}</span> <strong>{e.name}</strong> <small>{e.latest}</small>
                <button className="add" aria-label={`add ${e.name}`} onClick={() => onAdd(uses)}>add</button>
              </div>
              <div className="muted desc">{e.description}</div>
            </li>
          );
        })}
      </ul>
      {found.length > SHOWN && (
        <p className="muted" role="status">{found.length - SHOWN} more not shown (the palette lists {SHOWN} at most): refine the search.</p>
      )}
      {!found.length && <p className="muted">Nothing matches.</p>}
    </aside>
  );
}
