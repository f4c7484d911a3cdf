"""Deployments for the k3s provider's tests, built from plan steps as the placement stage makes them."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers.base import Deployment, Offer

HOSTILE = [
    'q"uote',
    "${var.run_token}",
    "%{ if true }x%{ endif }",
    "$${already}",
    "line\nbreak",
    "; rm -rf / #",
    "$(touch /tmp/pwned)`id`",
    "back\\slash",
    "ünï-cødé",
]


def step(step_id: str = "train", **kw: Any) -> PlanStep:
    fields: dict[str, Any] = {
        "id": step_id,
        "playbook": "playbook/sklearn-train@1.0.0",
        "digest": "sha256:0",
        "runtime": "python",
        "params": {},
        "inputs": {},
        "outputs": {"model": "model"},
        "needs": (),
        "entrypoint": "mlops_nocode.library.sklearn:train",
        "resources": {"cpu": 2, "memory": "4Gi", "gpu": 0},
        "source": f"pipeline/demo > steps.{step_id}",
        "target": {"provider": "k3s", "options": {}},
    }
    fields.update(kw)
    return PlanStep(**fields)


def deployment(
    steps: list[PlanStep] | None = None,
    options: dict[str, Any] | None = None,
    offer: Offer | None = None,
    run_id: str = "run-1",
    name: str = "k3s-0",
) -> Deployment:
    steps = steps or [step()]
    plan = Plan(root="pipeline/demo", parameters={}, steps=tuple(steps), outputs={})
    return Deployment(run_id, name, "k3s", offer, options or {}, tuple(steps), plan)


def terraform_binary() -> str:
    """terraform (or tofu) on PATH; a missing binary fails the test loudly (CI must install it)."""
    found = shutil.which("terraform") or shutil.which("tofu")
    if not found:
        pytest.fail("this test runs terraform for real: install Terraform >= 1.11 or OpenTofu")
    return found
