"""What a step asks of an offer: its `resources` and the constraints of its `target.options`.

Constraint options (any provider; `auto` chooses across providers with them):

| option | value | meaning |
|---|---|---|
| `gpu_type` | a name or a list (`A100`, `[L4, A10]`) | the GPU model; `A100` matches `A100-80GB` |
| `gpu_count` | integer 0-64 | at least this many GPUs (also `resources.gpu`) |
| `min_gpu_memory` | memory (`40Gi`) or GiB | at least this much memory per GPU |
| `min_memory` | memory (`16Gi`) or GiB | at least this much memory (also `resources.memory`) |
| `min_vcpus` | number > 0 | at least this many vCPUs (also `resources.cpu`) |
| `max_price_per_hour` | number ≥ 0 | at most this price (USD) per hour |
| `region` / `regions` | a name / a list | only offers in these regions (offers tied to none fit any) |
| `providers` | a list of provider names | only these providers (`auto`) |
| `exclude_providers` | a list of provider names | never these providers (`auto`) |
| `instance_type` / `offer` | an offer id | exactly this offer (its id in `mlops targets`) |

Other options are the provider's own (kubeconfig context, image...) and pass through untouched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_nocode.providers.base import Offer
from mlops_nocode.runtime.gpus import gpu_matches
from mlops_nocode.spec import Problem

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]i?)?$")
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:/+()-]{0,99}$")  # offer ids such as "NVIDIA A100 80GB PCIe"
_GPU_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")  # as spec/models.py's Resources.gpu_type
GIB = 2**30


@dataclass(frozen=True, slots=True)
class Needs:
    """Everything an offer must satisfy for one step (resources and constraints together)."""

    vcpus: float = 0.0
    memory_gib: float = 0.0
    gpus: int = 0
    gpu_memory_gib: float = 0.0
    gpu_types: tuple[str, ...] = ()
    gpu_model: str = ""  # resources.gpu_type: the offer must match it too (gpu_types: the options')
    max_price: float | None = None
    regions: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    offer: str | None = None

    def misses(self, offer: Offer) -> list[str]:
        """The constraints `offer` fails, by option name (empty when it fits)."""
        out = []
        if self.offer is not None and offer.id != self.offer:
            out.append("instance_type")
        if offer.vcpus < self.vcpus:
            out.append("vcpus")
        if offer.memory_gib < self.memory_gib - 1e-9:
            out.append("memory")
        if offer.gpu_count < self.gpus:
            out.append("gpu_count")
        kinds_ok = not self.gpu_types or any(gpu_matches(offer.gpu_type, t) for t in self.gpu_types)
        if not kinds_ok or (self.gpu_model and not gpu_matches(offer.gpu_type, self.gpu_model)):
            out.append("gpu_type")
        if self.gpu_memory_gib and offer.gpu_memory_gib < self.gpu_memory_gib:
            out.append("min_gpu_memory")
        if self.max_price is not None and offer.price_per_hour > self.max_price:
            out.append("max_price_per_hour")
        if self.regions and offer.region and offer.region.lower() not in {r.lower() for r in self.regions}:
            out.append("regions")
        return out

    def text(self) -> str:
        """The needs in words, for explanations."""
        parts = [f"{self.vcpus:g} vCPU", f"{self.memory_gib:g} GiB"]
        kinds = "/".join(self.gpu_types or ((self.gpu_model,) if self.gpu_model else ()))
        mem = f" with {self.gpu_memory_gib:g}Gi" if self.gpu_memory_gib else ""
        if self.gpus:
            parts.append(f"{self.gpus} GPU" + (f" ({kinds})" if kinds else "") + mem)
        elif kinds or mem:
            parts.append(f"GPU {kinds}{mem}".replace("GPU  ", "GPU "))
        if self.max_price is not None:
            parts.append(f"≤ ${self.max_price:g}/h")
        if self.regions:
            parts.append("in " + "/".join(self.regions))
        return ", ".join(parts)


def _memory_gib(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str) and len(value) <= 24 and (m := _MEMORY.match(value)):
        return float(m[1]) * _UNITS[m[2] or ""] / GIB
    return None


def _number(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if low <= value <= high else None


def _names(value: Any, max_items: int = 50) -> tuple[str, ...] | None:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or len(items) > max_items:
        return None
    if not all(isinstance(v, str) and _NAME.match(v) for v in items):
        return None
    return tuple(items)


CONSTRAINT_KEYS: frozenset[str] = frozenset(
    {
        "gpu_type",
        "gpu_count",
        "min_gpu_memory",
        "min_memory",
        "min_vcpus",
        "max_price_per_hour",
        "region",
        "regions",
        "providers",
        "exclude_providers",
        "instance_type",
        "offer",
    }
)
"""The target options placement reads on every provider (`needs_of`): a provider's own option checks let
them through (placement has used them to choose the offer)."""


def needs_of(
    resources: Mapping[str, Any], options: Mapping[str, Any], where: str, known: list[str]
) -> tuple[Needs, list[Problem]]:
    """The needs of a step with these `resources` and target `options`, and the located problems of
    invalid constraint values (`where` locates the options, e.g. `... > target.options`)."""
    problems: list[Problem] = []

    def bad(key: str, what: str, fix: str) -> None:
        problems.append(Problem(f"target option {key!r} {what}", f"{where}.{key}", fix))

    res_mem = _memory_gib(resources.get("memory", "0")) or 0.0
    res_cpu = _number(resources.get("cpu", 0), 0, 1e6) or 0.0
    res_gpu = resources.get("gpu", 0)
    res_gpu_mem = _memory_gib(resources.get("gpu_memory") or "0") or 0.0
    res_gpu_type = resources.get("gpu_type") if isinstance(resources.get("gpu_type"), str) else ""
    gpus = res_gpu if isinstance(res_gpu, int) and not isinstance(res_gpu, bool) and res_gpu >= 0 else 0
    values: dict[str, Any] = {}
    for key in ("min_memory", "min_gpu_memory"):
        if key in options:
            values[key] = _memory_gib(options[key])
            if values[key] is None:
                bad(key, f"is {_show(options[key])}", "give a memory such as 16Gi, or a number of GiB")
    if (
        "min_vcpus" in options
        and (values.setdefault("min_vcpus", _number(options["min_vcpus"], 0, 1e4))) is None
    ):
        bad("min_vcpus", f"is {_show(options['min_vcpus'])}", "give a number of vCPUs between 0 and 10000")
    if "gpu_count" in options:
        g = options["gpu_count"]
        if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g <= 64:
            bad("gpu_count", f"is {_show(g)}", "give a whole number of GPUs between 0 and 64")
        else:
            gpus = max(gpus, g)
    if "max_price_per_hour" in options:
        values["max_price"] = _number(options["max_price_per_hour"], 0, 1e6)
        if values["max_price"] is None:
            bad("max_price_per_hour", f"is {_show(options['max_price_per_hour'])}", "give a number ≥ 0 (USD)")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("gpu_type", "region", "regions", "providers", "exclude_providers"):
        if key in options:
            got = _names(options[key])
            if got is None:
                bad(
                    key,
                    f"is {_show(options[key])}",
                    "give a name, or a list of names (letters, digits, spaces, -_.:/+())",
                )
            else:
                lists[key] = got
    for key in ("providers", "exclude_providers"):
        unknown = [p for p in lists.get(key, ()) if p not in known]
        if unknown:
            bad(key, f"names unknown provider(s) {', '.join(map(repr, unknown))}", f"use: {', '.join(known)}")
    offer = options.get("instance_type", options.get("offer"))
    if offer is not None and not (isinstance(offer, str) and _NAME.match(offer)):
        key = "instance_type" if "instance_type" in options else "offer"
        bad(key, f"is {_show(offer)}", "give an offer id listed by `mlops targets`")
        offer = None
    needs = Needs(
        vcpus=max(res_cpu, values.get("min_vcpus") or 0.0),
        memory_gib=max(res_mem, values.get("min_memory") or 0.0),
        gpus=gpus,
        gpu_memory_gib=max(res_gpu_mem, values.get("min_gpu_memory") or 0.0),
        gpu_types=lists.get("gpu_type", ()),
        gpu_model=str(res_gpu_type or ""),
        max_price=values.get("max_price"),
        regions=lists.get("regions", ()) + lists.get("region", ()),
        providers=lists.get("providers", ()),
        exclude=lists.get("exclude_providers", ()),
        offer=offer,
    )
    return needs, problems


def _memory_bytes(text: str) -> float:
    m = _MEMORY.match(text)
    if not m:
        raise ValueError(f"invalid memory {text!r}")
    return float(m[1]) * _UNITS[m[2] or ""]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def malformed_resources(resources: Any) -> str | None:
    """What is wrong with a plan step's `resources` (plan files are untrusted), or None."""
    if not isinstance(resources, dict):
        return "has malformed resources (not an object)"
    cpu, memory, gpu = resources.get("cpu", 0), resources.get("memory", "0"), resources.get("gpu", 0)
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not 0 <= cpu <= 1e6:
        return f"has malformed resources.cpu {str(cpu)[:40]!r}"
    if isinstance(gpu, bool) or not isinstance(gpu, int) or not 0 <= gpu <= 10_000:
        return f"has malformed resources.gpu {str(gpu)[:40]!r}"
    try:
        _memory_bytes(str(memory)[:40])
    except ValueError:
        return f"has malformed resources.memory {str(memory)[:40]!r}"
    gpu_memory, gpu_type = resources.get("gpu_memory"), resources.get("gpu_type")
    if gpu_memory is not None and (not isinstance(gpu_memory, str) or not _MEMORY.match(gpu_memory[:40])):
        return f"has malformed resources.gpu_memory {str(gpu_memory)[:40]!r}"
    if gpu_type is not None and (not isinstance(gpu_type, str) or not _GPU_TYPE.match(gpu_type)):
        return f"has malformed resources.gpu_type {str(gpu_type)[:40]!r}"
    if (gpu_memory is not None or gpu_type is not None) and gpu < 1:
        return "has resources.gpu_memory or gpu_type without resources.gpu"
    return None
