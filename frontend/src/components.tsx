import { useEffect, useState } from "react";
import { Link } from "react-router";
import { ApiError, type Problem } from "./api";

/** Located problems where they belong: what went wrong, where, and how to fix it. */
export function Problems({ error }: { error: unknown }) {
  if (!error) return null;
  const problems: Problem[] =
    error instanceof ApiError ? error.problems : [{ what: String(error), where: "", fix: "" }];
  return (
    <div className="problems" role="alert">
      {problems.map((p, i) => (
        <div className="problem" key={i}>
          <strong>{p.what}</strong>
          {p.where && <span className="where"> at {p.where}</span>}
          {p.fix && <div className="fix">Fix: {p.fix}</div>}
        </div>
      ))}
    </div>
  );
}

/** Load once per change of `deps`: the value, the error, and whether it is still loading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: unknown; loading: boolean } {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  useEffect(() => {
    let live = true;
    setState({ loading: true });
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return state;
}

export function Status({ value }: { value: string }) {
  return <span className={`status status-${value}`} data-status={value}>{value}</span>;
}

export function when(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toLocaleString() : "";
}

export function RunLink({ id }: { id: string }) {
  return <Link to={`/runs/${encodeURIComponent(id)}`}>{id}</Link>;
}
