"""The assistant's model: the route ASSISTANT_MODEL through the platform's one LiteLLM client
(integrations/litellm/client.py), via the platform's proxy when one is configured."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.ai.assistant import Model
from mlops_nocode.ai.settings import AssistantSettings
from mlops_nocode.integrations.litellm.access import proxy_access
from mlops_nocode.integrations.litellm.client import chat
from mlops_nocode.integrations.litellm.routes import get_route


def route_secret_names(home: Path, settings: AssistantSettings) -> list[str]:
    """The secrets the assistant's route (and its fallbacks) name for their provider keys; RouteError
    naming the configured routes when the route does not exist."""
    route = get_route(home, settings.model, "chat")
    names = [route.api_key_secret] if route.api_key_secret else []
    for fallback in route.fallbacks:
        try:
            r = get_route(home, fallback, "chat")
        except ValueError:
            continue
        if r.api_key_secret:
            names.append(r.api_key_secret)
    return names


def route_model(
    home: Path,
    settings: AssistantSettings,
    lookup: Callable[[Iterable[str]], Mapping[str, str]],
    environ: Mapping[str, str],
) -> Model:
    """A Model calling ASSISTANT_MODEL; `lookup` gives the values of the secrets its route names (the
    gateway's vault, or the CLI's environment). RouteError now when the route does not exist."""
    secrets = dict(lookup(route_secret_names(home, settings)))
    via = proxy_access(home, environ)

    def ask(messages: list[dict[str, Any]]) -> str:
        answer = chat(
            home,
            settings.model,
            messages,
            secrets=secrets,
            via=via,
            temperature=settings.temperature,
            timeout=settings.timeout,
        )
        return answer.text

    return ask
