"""Install workflows into an n8n through its public API (`/api/v1`, header `X-N8N-API-KEY`), in place by
name, never twice.

Endpoints used (n8n 2.x public API, packages/cli/src/public-api/v1/openapi.yml):
- GET  /workflows?limit=250&cursor=...      -> {data: [workflow], nextCursor}
- POST /workflows {name, nodes, connections, settings}   (refuses `active`; `settings` is required)
- PUT  /workflows/{id} {name, nodes, connections, settings}
- POST /workflows/{id}/activate
- GET  /credentials?limit=250&cursor=...    -> {data: [{id, name, type, ...}], nextCursor} (never the data;
  owner and admins only: for other keys a 403, and the credential is then created anew)
- POST /credentials {name, type, data} -> {id, name, ...};  PATCH /credentials/{id} {data}
Secret values go only in request bodies; errors name what failed, never a value sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from mlops_nocode.integrations.apicall import call
from mlops_nocode.spec import Problem, SpecError

URL_RE = re.compile(r"^https?://[^\s/?#{}]+(/[^\s?#{}]*)?$")


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    action: str  # created, updated, activated, deleted


class N8n:
    """One n8n instance reached through its public API."""

    def __init__(self, url: str, key: str, timeout: float = 30.0, secrets: tuple[str, ...] = ()) -> None:
        base = url.strip().rstrip("/")
        if not URL_RE.match(base):
            raise SpecError(
                Problem("N8N_API_URL is not an http(s) URL", "N8N_API_URL", "e.g. http://127.0.0.1:5678")
            )
        base = base.removesuffix("/api/v1")
        self.secrets = tuple(x for x in (key, *secrets) if x)
        self.client = httpx.Client(
            base_url=f"{base}/api/v1",
            headers={"X-N8N-API-KEY": key, "Accept": "application/json"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, what: str, body: Any = None, **params: Any) -> Any:
        r = call(
            self.client,
            method,
            path,
            service="n8n",
            what=what,
            where_unreachable="N8N_API_URL",
            fixes={
                0: "check N8N_API_URL",
                401: "check N8N_API_KEY (an n8n API key: Settings > n8n API)",
                403: "give the API key's user the right to edit workflows and credentials",
                404: "check N8N_API_URL (the n8n base URL, without /api/v1)",
            },
            secrets=self.secrets,
            body=body,
            params=params,
        )
        return r.json() if r.content else None

    def _pages(self, path: str, what: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 250}
            if cursor:
                params["cursor"] = cursor
            page = self._call("GET", path, what, **params)
            out += page.get("data") or []
            cursor = page.get("nextCursor")
            if not cursor:
                return out

    def workflows(self) -> list[dict[str, Any]]:
        """Every workflow (all pages)."""
        return self._pages("/workflows", "workflows")

    def credential(self, name: str, type_: str, data: dict[str, Any]) -> tuple[dict[str, str], Change]:
        """The credential `name` of `type_` holding `data`: updated in place when it exists, else created."""
        what = f"credential {name!r}"
        try:
            found = [
                c
                for c in self._pages("/credentials", what)
                if c.get("name") == name and c.get("type") == type_
            ]
        except SpecError as e:
            if "answered 403" not in e.problems[0].what:
                raise
            found = []  # a key that may not list credentials: create one
        if found:
            cred_id = str(found[0]["id"])
            self._call("PATCH", f"/credentials/{cred_id}", what, {"data": data})
            return {"id": cred_id, "name": name}, Change("credential", name, "updated")
        made = self._call("POST", "/credentials", what, {"name": name, "type": type_, "data": data})
        return {"id": str(made["id"]), "name": name}, Change("credential", name, "created")

    def put_workflow(self, wf: dict[str, Any], existing: dict[str, Any] | None) -> tuple[str, Change]:
        """Create `wf`, or replace `existing` (same name) in place; its id and what was done."""
        body = {k: wf[k] for k in ("name", "nodes", "connections", "settings")}
        if existing is None:
            made = self._call("POST", "/workflows", f"workflow {wf['name']!r}", body)
            return str(made["id"]), Change("workflow", wf["name"], "created")
        self._call("PUT", f"/workflows/{existing['id']}", f"workflow {wf['name']!r}", body)
        return str(existing["id"]), Change("workflow", wf["name"], "updated")

    def activate(self, wf_id: str, name: str) -> Change:
        self._call("POST", f"/workflows/{wf_id}/activate", f"workflow {name!r}")
        return Change("workflow", name, "activated")
