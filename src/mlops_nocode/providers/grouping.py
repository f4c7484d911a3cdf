"""Grouping placed steps: steps sharing an explicit remote target go to one offer (the one machine or pod
that runs them all), and the placed steps of a plan form deployments (same provider, offer and options),
each named for files and resources."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers.base import Deployment, Offer
from mlops_nocode.providers.constraints import malformed_resources
from mlops_nocode.spec.values import memory_bytes

__all__ = ["deployment_names", "deployments", "shared_targets"]


def shared_targets(steps: tuple[PlanStep, ...]) -> dict[int, tuple[dict[str, Any], int]]:
    """Steps sharing an explicit remote target (same provider and options) go to one offer, the one machine
    or pod that runs them all: for each such step, the resources placed with (the largest cpu, memory and
    gpu of the group) and the group's size. Steps on `local` or `auto` are placed one by one."""
    groups: dict[str, list[int]] = defaultdict(list)
    keys: dict[int, str] = {}
    for i, s in enumerate(steps):
        t = s.target if isinstance(s.target, dict) else {}
        # ray: each step is its own task, placed by Ray on any node (no one machine runs the group)
        if t.get("provider", "local") in ("local", "auto", "ray") or malformed_resources(s.resources):
            continue
        if id(s.target) not in keys:
            keys[id(s.target)] = json.dumps(t, sort_keys=True, default=str)
        groups[keys[id(s.target)]].append(i)
    out: dict[int, tuple[dict[str, Any], int]] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        res = [steps[i].resources for i in members]
        largest = {
            "cpu": max(float(r.get("cpu", 0)) for r in res),
            "memory": str(max(memory_bytes(str(r.get("memory", "0"))) for r in res)),
            "gpu": max(int(r.get("gpu", 0)) for r in res),
        }
        if gpu_memory := [memory_bytes(str(r["gpu_memory"])) for r in res if r.get("gpu_memory")]:
            largest["gpu_memory"] = str(max(gpu_memory))  # bytes
        if gpu_types := [str(r["gpu_type"]) for r in res if r.get("gpu_type")]:
            largest["gpu_type"] = gpu_types[0]
        out.update((i, (largest, len(members))) for i in members)
    return out


def _group_key(step: PlanStep, placement: Mapping[str, Any]) -> str:
    offer = placement.get("offer") or {}
    options = step.target.get("options", {}) if isinstance(step.target, dict) else {}
    return json.dumps(
        [placement.get("provider"), offer.get("id"), offer.get("region"), options],
        sort_keys=True,
        default=str,
    )


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")[:40].strip("-") or "d"


def deployment_names(steps: tuple[PlanStep, ...], placements: list[dict[str, Any]]) -> list[str]:
    """One name per group of steps (provider, offer, region, options), in order of first appearance:
    `local`, `runpod-a100-80gb`, `runpod-a100-80gb-2` (letters, digits and '-', at most 44 characters)."""
    by_key: dict[str, str] = {}
    by_id: dict[tuple[int, int], str] = {}  # (placement, target) objects already named
    taken: set[str] = set()
    out = []
    for step, p in zip(steps, placements, strict=True):
        if (id(p), id(step.target)) in by_id:
            out.append(by_id[id(p), id(step.target)])
            continue
        key = _group_key(step, p)
        if key not in by_key:
            offer = p.get("offer") or {}
            base = (
                "local"
                if p.get("provider") == "local"
                else _slug(f"{p.get('provider')}-{offer.get('id', '')}")
            )
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
            taken.add(name)
            by_key[key] = name
        by_id[id(p), id(step.target)] = by_key[key]
        out.append(by_key[key])
    return out


def deployments(plan: Plan, run_id: str) -> list[Deployment]:
    """The placed plan's steps grouped into deployments (same provider, offer and options), in order of
    their first step. Places the plan first when it is not placed yet."""
    if any(s.placement is None for s in plan.steps):
        from mlops_nocode.providers.placement import place

        plan = place(plan)
    groups: dict[str, list[PlanStep]] = {}
    for s in plan.steps:
        assert s.placement is not None
        groups.setdefault(str(s.placement["deployment"]), []).append(s)
    out = []
    for name, steps in groups.items():
        p = steps[0].placement or {}
        offer = Offer.from_json(p["offer"]) if p.get("offer") and p.get("provider") != "local" else None
        options = steps[0].target.get("options", {}) if isinstance(steps[0].target, dict) else {}
        out.append(Deployment(run_id, name, str(p["provider"]), offer, dict(options), tuple(steps), plan))
    return out
