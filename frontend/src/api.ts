// The gateway's API as the browser uses it: the session cookie authenticates every request, and every
// write carries the session's CSRF token (X-CSRF-Token, from GET /api/v1/session).

/** One located problem, as the gateway reports them: what is wrong, where, and how to fix it. */
export interface Problem {
  what: string;
  where: string;
  fix: string;
}

/** An API answer that was not a success, with its problems. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problems: Problem[],
  ) {
    super(problems.map((p) => p.what).join("; "));
  }
}

export interface Session {
  id: string;
  key_id: string;
  scopes: string[];
  csrf_token: string;
  expires_at: number;
}

export interface Run {
  id: string;
  pipeline: string;
  status: string;
  details: string | null;
  parameters: Record<string, unknown>;
  target: Record<string, unknown> | null;
  steps: string[];
  outputs: Record<string, unknown> | null;
  created_at: number;
  started_at: number | null;
  finished_at?: number | null;
}

export interface RunEvent {
  seq: number;
  type: string;
  step: string | null;
  ts: number;
  data: Record<string, unknown>;
}

export interface Entry {
  ref: string;
  repo: string;
  kind: string;
  name: string;
  latest: string;
  versions: string[];
  description: string | null;
  labels: Record<string, string>;
}

export interface EntryVersion {
  ref: string;
  repo: string;
  version: string;
  versions: string[];
  text: string;
  used_by: { by: string; uses: string }[];
}

export interface Change {
  commit: string;
  version: string | null;
  author: string;
  date: string;
  message: string;
}

export interface Offer {
  provider: string;
  id: string;
  vcpus: number;
  memory_gib: number;
  gpu_type: string;
  gpu_count: number;
  gpu_memory_gib: number;
  price_per_hour: number;
  currency: string;
  region: string;
}

export interface Target {
  provider: string;
  installed: boolean;
  available: boolean;
  ready: boolean;
  reason: string | null;
  missing: string[];
  credentials?: boolean | null;
  terraform?: boolean | null;
  tools?: Record<string, boolean>;
  notes?: string[];
  sheet?: { date: string | null; source: string | null; refreshed: boolean; currency?: string | null; error?: string | null } | null;
  offers?: Offer[];
}

export interface SecretInfo {
  name: string;
  created_at: number;
  updated_at: number;
}

export interface KeyInfo {
  id: string;
  name: string;
  scopes: string[];
  created_at: number;
  revoked_at: number | null;
}

export interface Diff {
  ref: string;
  from: string;
  to: string;
  diff: string;
}

let csrf = "";

/** Turn any error body of the gateway into located problems (Problem lists, FastAPI 422s, plain text). */
export function problemsOf(status: number, body: unknown, where: string): Problem[] {
  const b = body as { detail?: unknown; problems?: Problem[] } | null;
  if (b && Array.isArray(b.problems) && b.problems.length) return b.problems;
  if (b && Array.isArray(b.detail)) {
    return b.detail.map((d: { loc?: unknown[]; msg?: string }) => ({
      what: String(d.msg ?? "invalid"),
      where: (d.loc ?? []).join("."),
      fix: "correct this value and try again",
    }));
  }
  const what = b && typeof b.detail === "string" ? b.detail : `HTTP ${status}`;
  const fix =
    status === 401
      ? "your session ended or the credential is not valid: sign in again with the login link `mlops up` printed"
      : status === 403
        ? "this session lacks the permission: sign in with a key that has it"
        : status === 404
          ? "it may have been deleted or renamed: reload the list"
          : status === 429
            ? "too many requests: wait a moment and try again"
            : status >= 500
              ? "see the gateway's log"
              : "";
  return [{ what, where, fix }];
}

/** Events the shell's banner listens to: the session ended (a 401 on a cookie request), the gateway
 * could not be reached, or it answered again (CONNECTION's detail: `{ok, started}`, when the request began,
 * so that an answer to a request older than a failure does not hide the failure). */
export const SESSION_LOST = "mlops:session-lost";
export const CONNECTION = "mlops:connection";

function tell(name: string, detail?: unknown) {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

async function request<T>(method: string, path: string, body?: unknown, bearer?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (bearer) headers["Authorization"] = `Bearer ${bearer}`;
  else if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  const started = performance.now();
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: bearer ? "omit" : "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    tell(CONNECTION, { ok: false, started });
    throw new ApiError(0, [{ what: `the gateway could not be reached (${String(e)})`, where: `${method} ${path}`, fix: "check the network and that `mlops up` still runs, then try again" }]);
  }
  tell(CONNECTION, { ok: true, started });
  if (response.status === 401 && !bearer && path !== "/api/v1/session") tell(SESSION_LOST);
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { detail: text.slice(0, 300) };
  }
  if (!response.ok) throw new ApiError(response.status, problemsOf(response.status, parsed, `${method} ${path}`));
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => request<T>("GET", path),
  post: <T>(path: string, body?: unknown) => request<T>("POST", path, body),
  put: <T>(path: string, body?: unknown) => request<T>("PUT", path, body),
  delete: <T>(path: string) => request<T>("DELETE", path),
  /** A request with an API key instead of the session (never stored: for what a session may not do). */
  withKey: <T>(key: string, method: string, path: string, body?: unknown) => request<T>(method, path, body, key),
  /** The browser's session (null when not signed in); remembers its CSRF token for the writes. */
  async session(): Promise<Session | null> {
    try {
      const s = await request<Session>("GET", "/api/v1/session");
      csrf = s.csrf_token;
      return s;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
      throw e;
    }
  },
};

export const q = encodeURIComponent;
