"""Which providers exist in this installation, and the placement check of a compiled plan."""

from __future__ import annotations

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.providers import local
from mlops_nocode.spec import Problem

AVAILABLE = ("local",)
PLANNED = ("k3s", "exoscale", "vastai", "runpod")


def check_placement(plan: Plan) -> list[Problem]:
    """Every step whose target is unavailable or cannot meet its needs, as located problems."""
    problems = []
    caps = local.capabilities()
    for step in plan.steps:
        provider = step.target.get("provider", "local")
        if provider == "auto":
            provider = "local"
        if provider not in AVAILABLE:
            problems.append(
                Problem(
                    f"target provider {provider!r} is not available in this version "
                    f"(available: {', '.join(AVAILABLE)})",
                    f"{step.source} > target",
                    "run it with --target local",
                )
            )
            continue
        for why in local.unmet_needs(step, caps):
            problems.append(
                Problem(
                    f"step {step.id} {why}",
                    f"{step.source} > resources",
                    "lower the step's resources or choose another target",
                )
            )
    return problems
