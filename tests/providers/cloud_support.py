"""Deployments for the cloud provider tests: small plans built by hand (no catalogue needed)."""

from __future__ import annotations

from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers.base import Deployment, Offer

HOSTILE = "x\"; rm -rf / #${var.run_token}%{ if true }$(id)`id`\n  - evil: yes\n'\\u0000"


def step(step_id: str, params: dict[str, Any] | None = None, **kw: Any) -> PlanStep:
    return PlanStep(
        id=step_id,
        playbook="playbook/p@1.0.0",
        digest="0" * 64,
        runtime="python",
        params=params or {},
        inputs={},
        outputs={"out": "any"},
        needs=(),
        entrypoint="m:f",
        **kw,
    )


def deployment(
    provider: str,
    offer: Offer | None = None,
    options: dict[str, Any] | None = None,
    steps: tuple[PlanStep, ...] | None = None,
    name: str = "train-1",
) -> Deployment:
    steps = steps or (step("train/fit", {"n": 3}),)
    plan = Plan(root="pipeline/p", parameters={}, steps=steps, outputs={})
    return Deployment("run-123", name, provider, offer, options or {}, steps, plan)
