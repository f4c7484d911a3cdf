"""Model routes: the models the platform can reach, by the name steps, the assistant and the RAG chat
use. Stored under MLOPS_HOME/llm/routes.yaml (no secret values: a route names the secret that holds its
provider key); serving steps add routes for the endpoints they start (`source: serving`)."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
ROUTES_FILE = "llm/routes.yaml"
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class RouteError(ValueError):
    """A route file or a route that cannot be used, with what to do about it."""


class ModelRoute(BaseModel):
    """One model the platform can call, by `name`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what steps write as `model:` (letters, digits, . _ : / -)")
    model: str = Field(
        description="the LiteLLM model string: openai/gpt-4o-mini, ollama/llama3, hosted_vllm/NAME, "
        "openai/NAME for any OpenAI-compatible server (with api_base)"
    )
    kind: Literal["chat", "completion", "embedding"] = "chat"
    api_base: str | None = Field(default=None, description="http(s) base URL of the provider or server")
    api_key_secret: str | None = Field(
        default=None, description="name of the secret holding the provider key (never the key itself)"
    )
    input_cost_per_token: float | None = Field(default=None, ge=0, description="USD; default: LiteLLM's map")
    output_cost_per_token: float | None = Field(default=None, ge=0)
    supports_json_schema: bool | None = Field(
        default=None, description="the model accepts response_format json_schema (default: LiteLLM knows)"
    )
    fallbacks: list[str] = Field(default_factory=list, description="routes tried in order when this fails")
    source: Literal["config", "serving"] = "config"
    service: str | None = Field(default=None, description="the serving service that created this route")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not ROUTE_NAME.fullmatch(v) or ".." in v:
            raise ValueError(f"route name {v!r}: use letters, digits and . _ : / - (at most 100, no '..')")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not v or len(v) > 200 or any(c.isspace() or ord(c) < 32 for c in v):
            raise ValueError(f"model {v!r}: a LiteLLM model string such as openai/gpt-4o-mini")
        return v

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_base {v!r} must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("api_base must not hold credentials: put the key in a secret (api_key_secret)")
        return v.rstrip("/")

    @field_validator("api_key_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None and not SECRET_NAME.fullmatch(v):
            raise ValueError(f"api_key_secret {v!r} must be a secret name (letters, digits, _)")
        return v

    @field_validator("fallbacks")
    @classmethod
    def _fallbacks(cls, v: list[str]) -> list[str]:
        for name in v:
            cls._name(name)
        return v


def routes_path(home: Path) -> Path:
    """Where the routes of MLOPS_HOME `home` are kept."""
    return home / ROUTES_FILE


ROUTES_ENV = "MLOPS_LLM_ROUTES"
"""Where a step's or a service's process finds the routes (JSON; no secret values): they cannot read
MLOPS_HOME, so the Runner hands them the routes this way (routes_env)."""


def routes_env(home: Path) -> dict[str, str]:
    """The environment entry giving a step process the routes of `home` (empty when none)."""
    routes = load_routes(home)
    if not routes:
        return {}
    return {ROUTES_ENV: json.dumps([r.model_dump(exclude_none=True) for r in routes.values()])}


def load_routes(home: Path | None) -> dict[str, ModelRoute]:
    """Every route of `home` by name (empty when none is configured); RouteError for a bad file. With
    `home` None (inside a step's process), the routes the Runner handed over in MLOPS_LLM_ROUTES."""
    if home is None:
        try:
            items = json.loads(os.environ.get(ROUTES_ENV) or "[]")
            return {r.name: r for r in (ModelRoute.model_validate(i) for i in items)}
        except (ValueError, ValidationError) as exc:
            raise RouteError(f"{ROUTES_ENV} holds no valid routes: {exc}") from None
    path = routes_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = yaml.safe_load(text) or {}
        items = data.get("routes", []) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise RouteError(f"{path}: expected `routes: [...]`")
        routes = [ModelRoute.model_validate(item) for item in items]
    except (yaml.YAMLError, ValidationError) as exc:
        raise RouteError(f"{path} is not a valid routes file: {exc}; fix or remove it") from None
    return {r.name: r for r in routes}


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    path = routes_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(home: Path, routes: dict[str, ModelRoute]) -> None:
    path = routes_path(home)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    body = {"routes": [r.model_dump(exclude_none=True, exclude_defaults=False) for r in routes.values()]}
    tmp.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def save_route(home: Path, route: ModelRoute) -> None:
    """Add or replace `route` (atomic; concurrent writers are serialised)."""
    with _locked(home):
        routes = load_routes(home)
        routes[route.name] = route
        _write(home, routes)


def remove_route(home: Path, name: str) -> bool:
    """Remove route `name`; False when there was none."""
    with _locked(home):
        routes = load_routes(home)
        if routes.pop(name, None) is None:
            return False
        _write(home, routes)
        return True


def key_secret_names(home: Path) -> list[str]:
    """The names of the secrets that hold the routes' provider keys (none for an unreadable file)."""
    try:
        return [r.api_key_secret for r in load_routes(home).values() if r.api_key_secret]
    except RouteError:
        return []


def get_route(
    home: Path | None, name: str, kind: str | None = None, routes: Mapping[str, ModelRoute] | None = None
) -> ModelRoute:
    """Route `name`, of `kind` when given; RouteError naming the configured ones otherwise. `routes`:
    the routes of `home` already read (a chain of fallbacks reads the file once)."""
    routes = load_routes(home) if routes is None else routes
    route = routes.get(name)
    if route is None:
        known = ", ".join(sorted(routes)) or "none"
        raise RouteError(
            f"no model route {name!r} (configured: {known}); add one with `mlops llm routes add` "
            "or PUT /api/v1/models/NAME"
        )
    if kind is not None and route.kind != kind:
        raise RouteError(f"model route {name!r} is a {route.kind} route, not {kind}: pick a {kind} route")
    return route
