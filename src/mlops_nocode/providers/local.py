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
from mlops_nocode.runtime.gpualloc import GpuNeed
from mlops_nocode.runtime.gpus import Gpu, discover
from mlops_nocode.spec.values import memory_bytes

RUNTIMES = runtimes_for("local")
FEATURES = Features(
    runtimes=RUNTIMES,
    unsupported={},
    gpus=True,  # those NVML lists (runtime/gpus.py); the Runner hands each GPU step devices of its own
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
    devices: tuple[Gpu, ...] = ()
    gpu_reason: str = ""  # why there is no GPU ("" when there are some)


def capabilities() -> Capabilities:
    """This machine, read now (its GPUs through NVML, as far as CUDA_VISIBLE_DEVICES lets this process)."""
    report = discover(os.environ.get("CUDA_VISIBLE_DEVICES"))
    reason = report.reason
    if not report.gpus and (files := nvidia_gpus()):
        reason += f" ({files} /dev/nvidiaN device file(s) exist: install the NVIDIA driver's NVML)"
    return Capabilities(
        RUNTIMES,
        float(os.cpu_count() or 1),
        psutil.virtual_memory().total,
        len(report.gpus),
        report.gpus,
        reason,
    )


def nvidia_gpus(dev: str = "/dev") -> int:
    """How many NVIDIA device files (/dev/nvidia<N>) this machine has: said when NVML lists none."""
    try:
        return sum(1 for name in os.listdir(dev) if name.startswith("nvidia") and name[6:].isdigit())
    except OSError:
        return 0


def this_machine() -> Offer:
    """The one offer of `local`: this machine as it is now, free. Its GPUs are those of its most common
    model (all of them on the usual machine); `extra.gpus` lists every device."""
    caps = capabilities()
    memory = round(caps.memory / 2**30, 2)
    if not caps.devices:
        extra = {"gpu_reason": caps.gpu_reason} if caps.gpu_reason else {}
        return Offer("local", OFFER_ID, caps.cpus, memory, 0.0, extra=extra)
    kinds: dict[str, list[Gpu]] = {}
    for g in caps.devices:
        kinds.setdefault(g.gpu_type, []).append(g)
    main = max(kinds.values(), key=len)
    return Offer(
        "local",
        OFFER_ID,
        caps.cpus,
        memory,
        0.0,
        gpu_type=main[0].gpu_type,
        gpu_count=len(main),
        gpu_memory_gib=float(min(g.memory_gib for g in main)),
        extra={"gpus": [g.to_json() for g in caps.devices], "driver": caps.devices[0].driver},
    )


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
    gpu = _gpu_unmet(res, caps)
    if gpu:
        why.append(
            (gpu, "resources.gpu", "lower the step's GPU needs, or place it on a target with such GPUs")
        )
    return why


def _gpu_unmet(res: Mapping[str, object], caps: Capabilities) -> str:
    """Why this machine's GPUs cannot meet the step's GPU need ("" when they can)."""
    count = res.get("gpu", 0)
    if not isinstance(count, int) or count <= 0:
        return ""
    kind = str(res.get("gpu_type") or "")
    gib = memory_bytes(str(res["gpu_memory"])) / 2**30 if res.get("gpu_memory") else 0.0
    need = GpuNeed(count, kind, gib)
    fitting = [g for g in caps.devices if need.fits(g)]
    if len(fitting) >= count:
        return ""
    if not caps.devices:
        return f"needs {need.text()}, this machine has none ({caps.gpu_reason or 'NVML lists none'})"
    have = ", ".join(f"{g.gpu_type} {g.memory_gib}Gi" for g in caps.devices)
    return f"needs {need.text()}, this machine has {len(fitting)} that fit (its GPUs: {have})"


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
