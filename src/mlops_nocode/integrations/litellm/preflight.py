"""Before a run is queued or started: every model route its litellm steps name (as written, or through a
parameter's value) exists here with the right kind, so a missing route is a located problem at launch,
not a failure after the steps before it have run for an hour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_nocode.integrations.litellm.routes import ModelRoute, RouteError, load_routes
from mlops_nocode.spec import Problem
from mlops_nocode.spec.expressions import EXPR_RE


def _name(template: Any, params: dict[str, Any]) -> tuple[str, str] | None:
    """(the route a `model:`/fallback template names, the parameter giving it or ""), when known before
    the run (None: from an input)."""
    if not isinstance(template, str):
        return None
    m = EXPR_RE.fullmatch(template.strip())
    if m is None:
        return (template, "") if "${{" not in template else None
    if m[1] != "params" or m[3] is not None:
        return None
    value = params.get(m[2])
    return (value, m[2]) if isinstance(value, str) else None


def route_problems(plan: Any, home: Path, here: frozenset[str] | None = None) -> list[Problem]:
    """Located problems for the routes the plan's litellm steps (those in `here`, default all) name and
    this MLOPS_HOME does not have (or has as another kind)."""
    steps = [s for s in plan.steps if s.runtime == "litellm" and (here is None or s.id in here)]
    if not steps:
        return []
    try:
        routes: dict[str, ModelRoute] = load_routes(home)
    except RouteError as e:
        return [Problem(str(e), "MLOPS_HOME/llm/routes.yaml", "fix the routes file or remove it")]
    routes = {**_served(plan), **routes}
    known = ", ".join(sorted(routes)) or "none"
    problems = []
    for step in steps:
        config = step.config or {}
        kind = config.get("mode", "chat")
        fields = [("model", config.get("model"))]
        fields += [(f"fallbacks[{i}]", f) for i, f in enumerate(config.get("fallbacks") or [])]
        for where, template in fields:
            found = _name(template, step.params)
            if found is None:
                continue
            name, param = found
            route = routes.get(name)
            if route is None:
                what = f"step {step.id} calls model route {name!r}, which is not configured "
                what += f"(configured: {known})"
                fix = "add it with `mlops llm routes add` (or PUT /api/v1/models/NAME), or name another route"
            elif route.kind != kind:
                article = "an" if route.kind[0] in "aeiou" else "a"
                what = f"step {step.id} makes a {kind} call on model route {name!r}, "
                what += f"{article} {route.kind} route"
                fix = f"name a {kind} route"
            else:
                continue
            at = f"with.{param}" if param else f"litellm.{where}"  # where the user wrote the name
            problems.append(Problem(what, f"{step.source or step.id} > {at}", fix))
    return problems


def _served(plan: Any) -> dict[str, ModelRoute]:
    """The routes the plan's own serve steps register when their service is up (a later step of the
    same run may call them): name -> a stand-in route of the declared kind."""
    out: dict[str, ModelRoute] = {}
    for step in plan.steps:
        route = (step.config or {}).get("route") if step.runtime == "serve" else None
        if not isinstance(route, dict):
            continue
        found = _name(route.get("name"), step.params)
        kind = route.get("kind", "chat")
        if found is None or kind not in ("chat", "completion", "embedding"):
            continue
        try:
            out[found[0]] = ModelRoute(name=found[0], model="openai/served", kind=kind, source="serving")
        except ValueError:
            continue  # a name no route may have: the serve step itself fails on it
    return out
