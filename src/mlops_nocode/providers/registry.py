"""Which providers exist in this installation, and the placement check of a compiled plan."""

from __future__ import annotations

from collections import defaultdict

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers import local
from mlops_nocode.spec import Problem

AVAILABLE = ("local",)
PLANNED = ("k3s", "exoscale", "vastai", "runpod")


def _steps(steps: list[PlanStep]) -> str:
    names = ", ".join(s.id for s in steps[:5])
    return names + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")


def check_placement(plan: Plan, launch_target: str | None = None) -> list[Problem]:
    """Every unavailable target and every step its target cannot run, as located problems.

    Problems shared by many steps are reported once, naming the steps.
    """
    problems = []
    unavailable: dict[str, list[PlanStep]] = defaultdict(list)
    caps = local.capabilities()
    for step in plan.steps:
        provider = step.target.get("provider", "local")
        if provider == "auto":
            provider = "local"
        if provider not in AVAILABLE:
            unavailable[provider].append(step)
            continue
        for what, field, fix in local.unmet_needs(step, caps):
            problems.append(Problem(f"step {step.id} {what}", f"{step.source} > {field}", fix))
    for provider, steps in unavailable.items():
        coming = f"; {provider} arrives with its provider module" if provider in PLANNED else ""
        where = "--target" if provider == launch_target else f"{steps[0].source} > target"
        problems.append(
            Problem(
                f"target provider {provider!r} is not available in this version (available: "
                f"{', '.join(AVAILABLE)}{coming}); it is the target of {_steps(steps)}",
                where,
                "run with --target local",
            )
        )
    return problems
