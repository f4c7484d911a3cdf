"""Sync the Windmill assets to a workspace through Windmill's REST API, in place by path (never twice).

Endpoints and bodies follow Windmill's OpenAPI (backend/windmill-api/openapi.yaml, as used by its own
client in npm `windmill-cli`), under `{WINDMILL_API_URL}/api`, with `Authorization: Bearer <token>`:
- folders:   GET /w/{ws}/folders/exists/{name} -> bool;  POST /w/{ws}/folders/create {name}
- variables: GET /w/{ws}/variables/exists/{path} -> bool;  POST /w/{ws}/variables/create
             {path, value, is_secret, description};  POST /w/{ws}/variables/update/{path} {value, ...}
- scripts:   GET /w/{ws}/scripts/exists/p/{path} -> bool;  GET /w/{ws}/scripts/get/p/{path} -> Script
             (with `hash`);  POST /w/{ws}/scripts/create NewScript (a new version when `parent_hash` is
             the current hash: Windmill keeps a script's versions under one path)
- flows:     GET /w/{ws}/flows/exists/{path} -> bool;  POST /w/{ws}/flows/create OpenFlowWPath;
             POST /w/{ws}/flows/update/{path} OpenFlowWPath
- apps:      GET /w/{ws}/apps/exists/{path} -> bool;  POST /w/{ws}/apps/create {path, value, summary,
             policy};  POST /w/{ws}/apps/update/{path} {summary, value, policy}
Secret values go only in request bodies; errors and reports name paths, never values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from mlops_nocode.integrations.apicall import call
from mlops_nocode.integrations.windmill.assets import Script
from mlops_nocode.spec import Problem, SpecError

WORKSPACE_RE = re.compile(r"^[a-zA-Z0-9_-]{1,50}$")
PATH_RE = re.compile(r"^[fu]/[a-zA-Z0-9_-]+(/[a-zA-Z0-9_.-]+)+$")


@dataclass(frozen=True)
class Variable:
    """A Windmill variable; `value` is sent, never shown."""

    path: str
    value: str
    secret: bool
    description: str

    def __repr__(self) -> str:
        return f"Variable({self.path!r}, secret={self.secret})"


@dataclass(frozen=True)
class Change:
    kind: str
    path: str
    action: str  # created, updated, unchanged


class Workspace:
    """One Windmill workspace reached through its REST API."""

    def __init__(
        self, url: str, token: str, workspace: str, timeout: float = 30.0, secrets: tuple[str, ...] = ()
    ) -> None:
        if not WORKSPACE_RE.fullmatch(workspace):
            raise SpecError(
                Problem(f"invalid workspace id {workspace[:60]!r}", "--workspace", "letters, digits, - and _")
            )
        base = url.strip().rstrip("/")
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", base):
            raise SpecError(
                Problem(
                    "WINDMILL_API_URL is not an http(s) URL", "WINDMILL_API_URL", "e.g. http://127.0.0.1:8001"
                )
            )
        api = base if base.endswith("/api") else base + "/api"
        self.where = "WINDMILL_API_URL"
        self.secrets = tuple(x for x in (token, *secrets) if x)
        self.client = httpx.Client(
            base_url=f"{api}/w/{workspace}", headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, what: str, body: Any = None) -> httpx.Response:
        return call(
            self.client,
            method,
            path,
            service="Windmill",
            what=what,
            where_unreachable=self.where,
            fixes={
                0: "check WINDMILL_API_URL",
                401: "check WINDMILL_API_KEY (a Windmill token)",
                403: "give the token's user write access to the folder f/mlops",
                404: "check --workspace",
            },
            secrets=self.secrets,
            body=body,
        )

    def _exists(self, route: str, what: str) -> bool:
        return self._call("GET", route, what).json() is True

    def folder(self, name: str) -> Change:
        what = f"f/{name}"
        if self._exists(f"/folders/exists/{name}", what):
            return Change("folder", what, "unchanged")
        self._call("POST", "/folders/create", what, {"name": name})
        return Change("folder", what, "created")

    def variable(self, v: Variable) -> Change:
        body = {"path": v.path, "value": v.value, "is_secret": v.secret, "description": v.description}
        if self._exists(f"/variables/exists/{v.path}", v.path):
            self._call("POST", f"/variables/update/{v.path}", v.path, body)
            return Change("variable", v.path, "updated")
        self._call("POST", "/variables/create", v.path, body)
        return Change("variable", v.path, "created")

    def script(self, s: Script, description: str = "") -> Change:
        body: dict[str, Any] = {
            "path": s.path,
            "summary": s.summary,
            "description": description,
            "content": s.content,
            "language": "python3",
        }
        if self._exists(f"/scripts/exists/p/{s.path}", s.path):
            current = self._call("GET", f"/scripts/get/p/{s.path}", s.path).json()
            if current.get("content") == s.content and current.get("summary") == s.summary:
                return Change("script", s.path, "unchanged")
            self._call("POST", "/scripts/create", s.path, body | {"parent_hash": current["hash"]})
            return Change("script", s.path, "updated")
        self._call("POST", "/scripts/create", s.path, body)
        return Change("script", s.path, "created")

    def flow(self, path: str, flow: dict[str, Any]) -> Change:
        body = {"path": path, **flow}
        if self._exists(f"/flows/exists/{path}", path):
            self._call("POST", f"/flows/update/{path}", path, body)
            return Change("flow", path, "updated")
        self._call("POST", "/flows/create", path, body)
        return Change("flow", path, "created")

    def app(self, path: str, app: dict[str, Any]) -> Change:
        if self._exists(f"/apps/exists/{path}", path):
            self._call("POST", f"/apps/update/{path}", path, app)
            return Change("app", path, "updated")
        self._call("POST", "/apps/create", path, {"path": path, **app})
        return Change("app", path, "created")


def check_path(path: str) -> None:
    if not PATH_RE.fullmatch(path):
        raise SpecError(Problem(f"invalid Windmill path {path[:80]!r}", "path", "write f/FOLDER/NAME"))
