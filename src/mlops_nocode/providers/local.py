"""The `local` provider: this machine. Provisions nothing; declares what it can run as data."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers.base import (
    Bundle,
    Deployment,
    Features,
    LaunchSpec,
    Offer,
    Provisioned,
    TargetState,
)
from mlops_nocode.runtime.executors import runtimes_for
from mlops_nocode.spec.values import memory_bytes

RUNTIMES = runtimes_for("local")
FEATURES = Features(
    runtimes=RUNTIMES,
    unsupported={
        "gpu": "`auto` never places GPU steps here; `--target local` does when this machine has NVIDIA "
        "GPUs (/dev/nvidiaN, which confined steps may use)",
    },
    gpus=False,
    provisions=False,
    iac="none",
)
OFFER_ID = "this-machine"


@dataclass(frozen=True)
class Capabilities:
    """What a target offers; anything outside it is refused at plan time, before anything runs."""

    runtimes: frozenset[str]
    cpus: float
    memory: int
    gpus: int


def capabilities() -> Capabilities:
    """This machine, read now."""
    return Capabilities(RUNTIMES, float(os.cpu_count() or 1), psutil.virtual_memory().total, nvidia_gpus())


def nvidia_gpus(dev: str = "/dev") -> int:
    """How many NVIDIA GPUs this machine has: its /dev/nvidia<N> device files (the step sandbox grants
    them, and CUDA_VISIBLE_DEVICES reaches steps)."""
    try:
        return sum(1 for name in os.listdir(dev) if name.startswith("nvidia") and name[6:].isdigit())
    except OSError:
        return 0


def this_machine() -> Offer:
    """The one offer of `local`: this machine as it is now, free."""
    caps = capabilities()
    return Offer("local", OFFER_ID, caps.cpus, round(caps.memory / 2**30, 2), 0.0)


def unmet_needs(step: PlanStep, caps: Capabilities) -> list[tuple[str, str, str]]:
    """Why `step` cannot run on a target with `caps`: (what, spec field, how to fix); empty when it fits."""
    why = []
    if step.runtime not in caps.runtimes:
        why.append(
            (
                f"uses runtime {step.runtime!r}, which this target cannot run "
                f"(it runs: {', '.join(sorted(caps.runtimes))})",
                "runtime",
                "choose a target that supports it, or a playbook with a supported runtime",
            )
        )
    res = step.resources
    fix = "lower the step's resources or choose a bigger target"
    if float(res.get("cpu", 0)) > caps.cpus:
        why.append((f"needs {res['cpu']} CPUs, this machine has {caps.cpus:g}", "resources.cpu", fix))
    if memory_bytes(str(res.get("memory", "0"))) > caps.memory:
        why.append(
            (
                f"needs {res['memory']} of memory, this machine has {caps.memory / 2**30:.1f}Gi",
                "resources.memory",
                fix,
            )
        )
    if int(res.get("gpu", 0)) > caps.gpus:
        why.append((f"needs {res['gpu']} GPU(s), this machine has {caps.gpus}", "resources.gpu", fix))
    return why


class LocalProvider:
    """This machine: one free offer read at run time, nothing to render, provision or tear down."""

    name = "local"
    features = FEATURES

    def state(self, env: Mapping[str, str]) -> TargetState:
        return TargetState("local", credentials=True, notes=("steps run on this machine",))

    def offers(self) -> list[Offer]:
        return [this_machine()]

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        return self.offers()

    def render(self, deployment: Deployment) -> Bundle:
        return Bundle(deployment.name, self.name, {}, (), 0.0)

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        return Provisioned(bundle.deployment, self.name, ())

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        return None

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        return "running"

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        return None


PROVIDER = LocalProvider()
