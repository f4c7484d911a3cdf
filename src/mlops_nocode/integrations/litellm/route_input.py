"""A route as the CLI and the gateway receive it: validated into a ModelRoute, or located Problems
(where = the option or body field to change), with nothing saved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from mlops_nocode.integrations.litellm.routes import ModelRoute
from mlops_nocode.spec import Problem, SpecError

FIXES = {
    "name": "letters, digits and . _ : / - (at most 100), e.g. chat or gpt-4o-mini",
    "model": "a LiteLLM model string: openai/gpt-4o-mini, ollama/llama3, hosted_vllm/NAME",
    "kind": "one of chat, completion, embedding",
    "api_base": "an http(s) URL without credentials, e.g. http://127.0.0.1:11434",
    "api_key_secret": "the NAME of a secret (letters, digits, _), never the key itself",
    "input_cost_per_token": "a number of USD >= 0",
    "output_cost_per_token": "a number of USD >= 0",
    "fallbacks": "names of configured routes of the same kind",
}


def parse_route(
    data: Mapping[str, Any], known: Mapping[str, ModelRoute], where: Mapping[str, str] | None = None
) -> ModelRoute:
    """`data` as a ModelRoute whose fallbacks are `known` routes of its kind; SpecError otherwise.
    `where` maps field names to what the caller calls them (CLI options); default `body.FIELD`."""

    def at(field: str) -> str:
        return (where or {}).get(field, f"body.{field}")

    try:
        route = ModelRoute.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            message = str(e["msg"]).removeprefix("Value error, ")
            problems.append(Problem(message, at(field) if field else "body", FIXES.get(field, "")))
        raise SpecError(problems) from None
    problems = []
    for name in route.fallbacks:
        other = known.get(name)
        if name == route.name:
            problems.append(
                Problem(f"route {name!r} cannot fall back on itself", at("fallbacks"), FIXES["fallbacks"])
            )
        elif other is None:
            configured = ", ".join(sorted(known)) or "none"
            problems.append(
                Problem(
                    f"fallback {name!r} is not a configured route (configured: {configured})",
                    at("fallbacks"),
                    "add that route first, or drop it from the fallbacks",
                )
            )
        elif other.kind != route.kind:
            problems.append(
                Problem(
                    f"fallback {name!r} is a {other.kind} route, not {route.kind}",
                    at("fallbacks"),
                    FIXES["fallbacks"],
                )
            )
    if problems:
        raise SpecError(problems)
    return route
