"""The `local` provider: this machine. Provisions nothing; declares what it can run as data."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

from mlops_nocode.compiler.plan import PlanStep

_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def memory_bytes(text: str) -> int:
    m = re.match(r"^(\d+(?:\.\d+)?)([KMGT]i?)?$", text)
    if not m:
        raise ValueError(f"invalid memory {text!r}")
    return int(float(m[1]) * _UNITS[m[2] or ""])


@dataclass(frozen=True)
class Capabilities:
    """What a target offers; anything outside it is refused at plan time, before anything runs."""

    runtimes: frozenset[str]
    cpus: float
    memory: int
    gpus: int


def capabilities() -> Capabilities:
    return Capabilities(
        frozenset({"python", "command"}), float(os.cpu_count() or 1), psutil.virtual_memory().total, 0
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
    if int(res.get("gpu", 0)) > caps.gpus:
        why.append((f"needs {res['gpu']} GPU(s), this machine has {caps.gpus}", "resources.gpu", fix))
    return why
