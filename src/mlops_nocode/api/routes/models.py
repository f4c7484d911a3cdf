"""/api/v1/models: the model routes (MLOPS_HOME/llm/routes.yaml; never a secret value: a route names the
secret holding its key) and the state of the LiteLLM proxy `mlops llm up` runs; /api/v1/models/keys: the
keys that proxy accepts (admin scope; a key's value is returned once, by POST)."""

from __future__ import annotations

from typing import Any, Literal

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


class ModelsOut(BaseModel):
    """The routes and the proxy's state."""

    routes: list[dict[str, Any]]
    proxy: dict[str, Any]


class KeyIn(BaseModel):
    """A new proxy key."""

    model_config = ConfigDict(extra="forbid")

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
    return {**state.public(), "running": alive, "ready": alive and proxy.ready(state.url, timeout=0.5)}


@router.get("", response_model=ModelsOut)
async def list_models(gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Every route (no secret values) and whether the LiteLLM proxy runs and is ready."""
    routes = _routes(gw)
    proxy = await run_in_threadpool(_proxy, gw)
    return {"routes": [r.model_dump(exclude_none=True) for r in routes.values()], "proxy": proxy}


@router.put("/{name:path}", responses={201: {"description": "created"}})
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


def _keys(gw: Gateway) -> Any:
    from mlops_nocode.integrations.litellm.vkeys import VirtualKeys, keys_path

    return VirtualKeys(keys_path(gw.settings.home))


@router.get("/keys", response_model=list[dict[str, Any]])
def list_keys(_: Principal = Depends(require_admin), gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """The proxy's keys (never their values), with budgets, spend and tokens (admin scope)."""
    return [k.to_json() for k in _keys(gw).list()]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
def create_key(
    body: KeyIn, _: Principal = Depends(require_admin_minting), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """A new proxy key; its value (`key`) is in this answer only (admin scope, not from a browser
    session). 422 for a bad name or budget."""
    try:
        info, value = _keys(gw).create(body.name, budget_usd=body.budget_usd, models=body.models)
    except ValueError as e:
        where: Literal["body.name", "body.budget_usd"] = (
            "body.name" if "name" in str(e) else "body.budget_usd"
        )
        raise SpecError(Problem(str(e), where, "see the request schema")) from None
    return {**info.to_json(), "key": value}


@router.post("/keys/{key_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(
    key_id: str = Path(pattern=r"^k[0-9a-f]{12}$"),
    _: Principal = Depends(require_admin),
    gw: Gateway = Depends(gateway),
) -> Response:
    """Revoke a key: the proxy refuses it from its next call. 404 when there is no such live key."""
    if not _keys(gw).revoke(key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live key {key_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
