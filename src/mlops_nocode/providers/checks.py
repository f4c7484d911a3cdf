"""What a Runner checks in a placed plan it is given, and what a run on this machine cannot execute.

Plan files are untrusted: every field read here is checked, and anything malformed is a located problem.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers import local, registry
from mlops_nocode.providers.base import Offer
from mlops_nocode.providers.constraints import malformed_resources, needs_of
from mlops_nocode.providers.placement import CHECKED, offer_text, place, step_list
from mlops_nocode.spec import Problem, SpecError


def check_placed(plan: Plan) -> list[Problem]:
    """What a Runner refuses in a plan it is given: steps placed on `local` that this machine cannot run,
    and steps whose needs exceed the offer they were placed on (never remote steps against this machine).
    A plan without placements (written before placement existed) is placed first."""
    if any(s.placement is None for s in plan.steps):
        try:
            plan = place(plan)
        except SpecError as e:
            return list(e.problems)
    caps = local.capabilities()
    problems: list[Problem] = []
    for step in plan.steps:
        p = step.placement if isinstance(step.placement, dict) else {}
        provider = p.get("provider")
        bad_resources = malformed_resources(step.resources)
        if bad_resources:
            fix = "write the plan again with `mlops plan --out`"
            problems.append(Problem(f"step {step.id} {bad_resources}", f"steps ({step.id}) > resources", fix))
            continue
        if provider == "local":
            problems += [
                Problem(f"step {step.id} {w}", f"{step.source} > {f}", fix)
                for w, f, fix in local.unmet_needs(step, caps)
            ]
            continue
        try:
            offer = Offer.from_json(p["offer"])
        except (KeyError, TypeError, ValueError, AttributeError):
            problems.append(
                Problem(
                    f"step {step.id} has a malformed placement",
                    f"steps ({step.id}) > placement",
                    "place the plan again with `mlops plan --out`",
                )
            )
            continue
        if provider not in registry.NAMES or offer.provider != provider:
            problems.append(
                Problem(
                    f"step {step.id} is placed on unknown provider {str(provider)[:40]!r}",
                    f"steps ({step.id}) > placement",
                    "place the plan again with `mlops plan --out`",
                )
            )
            continue
        needs, _ = needs_of(step.resources, {}, "", [])
        miss = [m for m in needs.misses(offer) if m in CHECKED]
        if miss:
            problems.append(
                Problem(
                    f"step {step.id} needs more than its offer {offer_text(offer)}: "
                    + ", ".join(CHECKED[m] for m in miss),
                    f"{step.source} > resources",
                    "place the plan again with `mlops plan --out`",
                )
            )
    return problems


DRIVEN_HERE = frozenset({"local", "ray"})
"""Providers whose steps the Runner of the run runs itself (`ray`: it submits them as Ray tasks)."""


def driven_here(provider: str, options: Any) -> bool:
    """Whether steps on `provider` with these target options are run by the run's own Runner: local and
    ray steps, except ray with `submit: job` (a Ray Job runs them: a deployment of its own)."""
    submit_job = isinstance(options, dict) and options.get("submit") == "job"
    return provider in DRIVEN_HERE and not (provider == "ray" and submit_job)


def step_driven_here(step: PlanStep) -> bool:
    """driven_here for a placed step (its provider, its target's options)."""
    provider = str((step.placement or {}).get("provider", "local"))
    target = step.target if isinstance(step.target, dict) else {}
    return driven_here(provider, target.get("options"))


def remote_steps(plan: Plan, launch_where: str = "--target") -> list[Problem]:
    """Steps a run on this machine cannot execute: those placed on another provider (once per provider)."""
    by: dict[str, list[PlanStep]] = defaultdict(list)
    for s in plan.steps:
        if s.placement is not None and not step_driven_here(s):
            by[str(s.placement.get("provider"))].append(s)
    return [
        Problem(
            f"steps placed on {provider} cannot run on this machine: {step_list(steps)}",
            f"{steps[0].source} > target",
            f"deploy it (`mlops deploy REF`); to run it here, launch with {launch_where} local when the "
            "launch chose this target, else set the step's `target:` to local (a step's own target wins)",
        )
        for provider, steps in by.items()
    ]
