"""The LiteLLM proxy configuration rendered from the model routes (`mlops llm config`, `mlops llm up`,
the Kubernetes ConfigMap). Provider keys appear only as LiteLLM's own `os.environ/NAME` references to the
secret each route names: never a value. Keyless routes get a fixed placeholder key, so that LiteLLM never
falls back on a provider key found in the proxy's environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from mlops_nocode.integrations.litellm.client import NO_KEY
from mlops_nocode.integrations.litellm.routes import ModelRoute

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
HOOKS = "mlops_nocode.integrations.litellm.proxy_hooks"
NUM_RETRIES = 2
REQUEST_TIMEOUT = 600


def secret_names(routes: Mapping[str, ModelRoute]) -> list[str]:
    """The secrets the routes name (the proxy's environment must hold them), sorted."""
    return sorted({r.api_key_secret for r in routes.values() if r.api_key_secret})


def _params(route: ModelRoute) -> dict[str, Any]:
    params: dict[str, Any] = {"model": route.model}
    if route.api_base:
        params["api_base"] = route.api_base
    params["api_key"] = f"os.environ/{route.api_key_secret}" if route.api_key_secret else NO_KEY
    if route.input_cost_per_token is not None:
        params["input_cost_per_token"] = route.input_cost_per_token
    if route.output_cost_per_token is not None:
        params["output_cost_per_token"] = route.output_cost_per_token
    return params


def render_config(
    routes: Mapping[str, ModelRoute], *, platform_keys: bool = True, num_retries: int = NUM_RETRIES
) -> dict[str, Any]:
    """The proxy's config.yaml as a mapping. `platform_keys`: the platform's key hooks (proxy_hooks.py,
    for `mlops llm up`); without them (the Kubernetes image, which lacks our package) the master key
    alone guards the proxy and LiteLLM's own virtual keys need its DATABASE_URL."""
    model_list = []
    for route in sorted(routes.values(), key=lambda r: r.name):
        info: dict[str, Any] = {"mode": route.kind}
        if route.supports_json_schema is not None:
            info["supports_response_schema"] = route.supports_json_schema
        model_list.append({"model_name": route.name, "litellm_params": _params(route), "model_info": info})
    fallbacks = []  # only to routes that exist: LiteLLM would fail the call on an unknown one
    for route in sorted(routes.values(), key=lambda r: r.name):
        known = [f for f in route.fallbacks if f in routes and f != route.name]
        if known:
            fallbacks.append({route.name: known})
    router: dict[str, Any] = {"num_retries": num_retries, "timeout": REQUEST_TIMEOUT}
    if fallbacks:
        router["fallbacks"] = fallbacks
    litellm_settings: dict[str, Any] = {"drop_params": True, "request_timeout": REQUEST_TIMEOUT}
    general: dict[str, Any] = {"master_key": f"os.environ/{MASTER_KEY_ENV}"}
    if platform_keys:
        litellm_settings["callbacks"] = [f"{HOOKS}.spend"]
        general["custom_auth"] = f"{HOOKS}.auth"
    return {
        "model_list": model_list,
        "router_settings": router,
        "litellm_settings": litellm_settings,
        "general_settings": general,
    }


def config_yaml(
    routes: Mapping[str, ModelRoute], *, platform_keys: bool = True, num_retries: int = NUM_RETRIES
) -> str:
    """render_config as YAML text."""
    header = "# LiteLLM proxy configuration rendered by `mlops llm config` from the model routes.\n"
    header += "# Keys are os.environ/NAME references to secrets, never values.\n"
    body = yaml.safe_dump(
        render_config(routes, platform_keys=platform_keys, num_retries=num_retries), sort_keys=False
    )
    return header + body
