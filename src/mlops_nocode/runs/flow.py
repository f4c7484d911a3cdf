"""The run flow, written once: spec → resolve → compile → place → render → (provision → run → report →
teardown, in runs.deploying). The CLI (`mlops plan`, `mlops run`, `mlops execute`) and the gateway
(`/api/v1/plan`, run creation, the workers) all go through these functions.

Placement and the provider registry come from `providers.placement` and `providers.registry` (one
module per provider exposing `PROVIDER`; PROVIDER_MODULES adds or replaces providers: plug-ins, tests).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, cast

from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers import placement, registry
from mlops_nocode.providers.base import Bundle, Deployment, Provider, ProviderError
from mlops_nocode.providers.checks import DRIVEN_HERE, driven_here
from mlops_nocode.runtime.handoff import deployment_of
from mlops_nocode.spec import Problem, SpecError

__all__ = [
    "DRIVEN_HERE",
    "LOCAL",
    "deployment_of",
    "deployments",
    "driven_here",
    "place",
    "placed_plan",
    "provider_for",
    "render",
]

LOCAL = "local"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def provider_for(name: str) -> Provider | None:
    """The provider named `name` (providers.registry: PROVIDER_MODULES first, then the built-in module);
    None when this installation does not have it."""
    try:
        return registry.get(name)
    except registry.ProviderMissing:
        return None


def provider_of(step: PlanStep) -> str:
    """The provider a (placed) step runs on."""
    if step.placement:
        return str(step.placement.get("provider", LOCAL))
    provider = str(step.target.get("provider", LOCAL))
    return LOCAL if provider == "auto" else provider


def place(plan: Plan, launch: dict[str, Any] | None, launch_where: str = "--target") -> Plan:
    """Write where each step runs into `PlanStep.placement` (providers.placement); SpecError otherwise.
    Container images of steps run here are pinned by digest when the local engine has them."""
    placed = placement.place(plan, launch, launch_where=launch_where)
    if any(s.runtime == "container" for s in placed.steps):
        from mlops_nocode.runtime.executors.container import pin_images

        here = frozenset(s.id for s in placed.steps if provider_of(s) == LOCAL)
        placed = pin_images(placed, here)
    return placed


def deployments(plan: Plan, run_id: str) -> list[Deployment]:
    """The placed plan's steps grouped by deployment, in the order of their first step. A deployment
    name becomes a folder and a resource name: anything but a DNS label is refused (a plan file is
    untrusted input)."""
    for s in plan.steps:
        if s.placement is not None and not _NAME.match(deployment_of(s)):
            raise SpecError(
                Problem(
                    f"invalid deployment name {deployment_of(s)!r} of step {s.id}",
                    f"{s.source or s.id} > placement.deployment",
                    "lower-case letters, digits and '-', at most 63, starting with a letter or digit",
                )
            )
    return placement.deployments(plan, run_id)


def placed_plan(
    root: Any,
    catalogue: Any,
    params: dict[str, Any],
    launch: dict[str, Any] | None,
    *,
    check_only: bool = False,
    launch_where: str = "--target",
) -> Plan:
    """compile → place, the one way a plan becomes runnable; SpecError with located problems."""
    plan = compile_plan(root, catalogue, params, launch, check_only=check_only)
    return place(plan, launch, launch_where)


def is_remote(plan: Plan) -> bool:
    """Whether some step of the placed plan runs elsewhere than in this process's Runner (on another
    provider, or on ray with `submit: job`)."""
    return any(
        not driven_here(provider_of(s), s.target.get("options") if isinstance(s.target, dict) else None)
        for s in plan.steps
    )


# -- render (creates nothing) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rendered:
    """Every deployment's bundle, the estimated cost, and how long rendering took."""

    bundles: tuple[Bundle, ...]
    seconds: float

    def cost(self) -> dict[str, Any]:
        """Per hour (all deployments together) and a total when every deployment has an expected duration."""
        per_hour = round(sum(b.price_per_hour for b in self.bundles), 4)
        totals = [b.total for b in self.bundles]
        total = None if any(t is None for t in totals) else round(sum(cast(float, t) for t in totals), 4)
        return {"per_hour": per_hour, "total": total, "currency": "USD"}

    def to_json(self) -> dict[str, Any]:
        return {"bundles": [b.to_json() for b in self.bundles], "cost": self.cost()}


def render(plan: Plan, run_id: str = "plan") -> Rendered:
    """Each deployment's Bundle (provider.render), creating nothing."""
    started = time.perf_counter()
    bundles = [_render_one(d) for d in deployments(plan, run_id)]
    return Rendered(tuple(bundles), time.perf_counter() - started)


def _render_one(deployment: Deployment) -> Bundle:
    provider = provider_for(deployment.provider)
    if provider is not None:
        try:
            return provider.render(deployment)
        except ProviderError as e:
            raise SpecError(Problem(e.what, f"deployment {deployment.name}: {e.where}", e.fix)) from None
    if deployment.provider == LOCAL:  # `local` provisions nothing
        return Bundle(deployment.name, LOCAL, {}, (), 0.0, _hours(deployment.steps))
    raise SpecError(
        Problem(
            f"target provider {deployment.provider!r} is not available in this installation",
            f"deployment {deployment.name}",
            "run with --target local, or install the provider (see docs/TARGETS.md)",
        )
    )


def _hours(steps: tuple[PlanStep, ...]) -> float | None:
    """The expected duration of a deployment: the sum of its steps' timeouts, when all declare one."""
    if not steps or any(s.timeout is None for s in steps):
        return None
    return round(sum(cast(float, s.timeout) for s in steps) / 3600, 4)
