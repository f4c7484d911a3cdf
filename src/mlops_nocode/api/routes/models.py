"""/api/v1/models: the model routes (MLOPS_HOME/llm/routes.yaml; never a secret value: a route names the
secret holding its key) and the state of the LiteLLM proxy `mlops llm up` runs; /api/v1/models/keys: the
keys that proxy accepts (admin scope; a key's value is returned once, by POST)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlops_nocode.api.auth import Principal, require_admin, require_admin_minting
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.integrations.litellm.routes import (
    ROUTE_NAME,
    RouteError,
    load_routes,
    remove_route,
    save_route,
)
from mlops_nocode.integrations.litellm.vkeys import BadKeyInput, VirtualKeys, keys_path
from mlops_nocode.spec import Problem, SpecError

router = APIRouter(prefix="/models", tags=["models"])
Name = Path(pattern=f"^{ROUTE_NAME.pattern}$", description="the route's name (what steps write as `model:`)")


class RouteIn(BaseModel):
    """A route's fields (its name is in the path); checked like `mlops llm routes add`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"model": "openai/gpt-4o-mini", "kind": "chat", "api_key_secret": "OPENAI_API_KEY"}]})  # fmt: skip

    model: str = Field(
        description="LiteLLM model string: openai/gpt-4o-mini, ollama/llama3, hosted_vllm/NAME"
    )
    kind: str = "chat"
    api_base: str | None = None
    api_key_secret: str | None = Field(default=None, description="NAME of the secret holding the key")
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    supports_json_schema: bool | None = None
    fallbacks: list[str] = Field(default_factory=list)


ROUTE_EXAMPLE: dict[str, Any] = dict(
    name="gpt", model="openai/gpt-4o-mini", kind="chat", api_key_secret="OPENAI_API_KEY",
    fallbacks=["llama3"], source="config",
)  # fmt: skip
PROXY_EXAMPLE: dict[str, Any] = dict(
    running=True, ready=True, url="http://127.0.0.1:4000", pid=4242, port=4000, started=1767225600.0
)
KEY_EXAMPLE: dict[str, Any] = dict(
    id="k1a2b3c4d5e6", name="chatbot", created=1767225600.0, budget_usd=5.0, models=["gpt"], revoked=None,
    internal=False, spend_usd=0.0123, prompt_tokens=5120, completion_tokens=880, requests=14,
)  # fmt: skip


class RouteOut(BaseModel):
    """A route as stored (no secret value: `api_key_secret` is a name)."""

    model_config = ConfigDict(json_schema_extra={"examples": [ROUTE_EXAMPLE]})

    name: str
    model: str
    kind: str
    api_base: str | None = None
    api_key_secret: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    supports_json_schema: bool | None = None
    fallbacks: list[str] = Field(default_factory=list)
    source: str = "config"
    service: str | None = None


class ProxyOut(BaseModel):
    """The LiteLLM proxy `mlops llm up` runs for this MLOPS_HOME (never its keys)."""

    model_config = ConfigDict(json_schema_extra={"examples": [PROXY_EXAMPLE]})

    running: bool
    ready: bool
    url: str | None = None
    pid: int | None = None
    port: int | None = None
    started: float | None = None


class ModelsOut(BaseModel):
    """The routes and the proxy's state."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"routes": [ROUTE_EXAMPLE], "proxy": PROXY_EXAMPLE}]}
    )

    routes: list[RouteOut]
    proxy: ProxyOut


class KeyOut(BaseModel):
    """A proxy key (never its value), with its budget and spend."""

    model_config = ConfigDict(json_schema_extra={"examples": [KEY_EXAMPLE]})

    id: str
    name: str
    created: float
    budget_usd: float | None = None
    models: list[str] = Field(default_factory=list)
    revoked: float | None = None
    internal: bool = False
    spend_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0


class KeyCreatedOut(KeyOut):
    """A new proxy key, with its value (`key`), returned this once."""

    model_config = ConfigDict(json_schema_extra={"examples": [{**KEY_EXAMPLE, "key": "sk-mlops-..."}]})

    key: str


class KeyIn(BaseModel):
    """A new proxy key."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "chatbot", "budget_usd": 5, "models": ["gpt"]}]})  # fmt: skip

    name: str = Field(description="a label: letters, digits and . _ -")
    budget_usd: float | None = Field(default=None, description="USD it may spend (none: no limit)")
    models: list[str] = Field(default_factory=list, description="routes it may call (empty: all)")


def _routes(gw: Gateway) -> dict[str, Any]:
    try:
        return load_routes(gw.settings.home)
    except RouteError as e:
        raise SpecError(Problem(str(e), "MLOPS_HOME/llm/routes.yaml", "fix or remove the file")) from None


def _proxy(gw: Gateway) -> dict[str, Any]:
    from mlops_nocode.integrations.litellm import proxy

    state = proxy.read_state(gw.settings.home)
    if state is None:
        return {"running": False, "ready": False}
    alive = proxy.running(gw.settings.home) is not None
    ready = alive and proxy.ready(state.url, timeout=0.5)
    return {"running": alive, "ready": ready, "url": state.url, "pid": state.pid, "port": state.port,
            "started": state.started}  # fmt: skip


@router.get("", response_model=ModelsOut)
async def list_models(gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Every route (no secret values) and whether the LiteLLM proxy runs and is ready."""
    routes = _routes(gw)
    proxy = await run_in_threadpool(_proxy, gw)
    return {"routes": [r.model_dump(exclude_none=True) for r in routes.values()], "proxy": proxy}


@router.put(
    "/{name:path}", response_model=RouteOut, responses={201: {"description": "created", "model": RouteOut}}
)
def put_model(
    body: RouteIn, response: Response, name: str = Name, gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """Add or replace route `name` (201 when new). 422 with located problems (`body.FIELD`) for a bad
    value or a fallback that is not a configured route of the same kind; nothing is saved then."""
    from mlops_nocode.integrations.litellm.route_input import parse_route

    known = _routes(gw)
    route = parse_route({**body.model_dump(), "name": name}, known)
    save_route(gw.settings.home, route)
    response.status_code = status.HTTP_200_OK if name in known else status.HTTP_201_CREATED
    return route.model_dump(exclude_none=True)


@router.delete(
    "/{name:path}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"description": "no such route"}}
)
def delete_model(name: str = Name, gw: Gateway = Depends(gateway)) -> Response:
    """Remove route `name` (a running proxy keeps serving it until `mlops llm down` / `up`)."""
    if not remove_route(gw.settings.home, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model route {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _keys(gw: Gateway) -> VirtualKeys:
    return VirtualKeys(keys_path(gw.settings.home))


@router.get("/keys", response_model=list[KeyOut])
def list_keys(_: Principal = Depends(require_admin), gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """The proxy's keys (never their values), with budgets, spend and tokens (admin scope)."""
    return [k.to_json() for k in _keys(gw).list()]


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreatedOut)
def create_key(
    body: KeyIn, _: Principal = Depends(require_admin_minting), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """A new proxy key; its value (`key`) is in this answer only (admin scope, not from a browser
    session). 422 for a bad name or budget."""
    try:
        info, value = _keys(gw).create(body.name, budget_usd=body.budget_usd, models=body.models)
    except BadKeyInput as e:
        raise SpecError(Problem(str(e), f"body.{e.field}", "see the request schema")) from None
    return {**info.to_json(), "key": value}


@router.post(
    "/keys/{key_id}/revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "no such live key"}},
)
def revoke_key(
    key_id: str = Path(pattern=r"^k[0-9a-f]{12}$"),
    _: Principal = Depends(require_admin),
    gw: Gateway = Depends(gateway),
) -> Response:
    """Revoke a key: the proxy refuses it from its next call. 404 when there is no such live key."""
    if not _keys(gw).revoke(key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live key {key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
