"""Generated specs for the benchmarks: chains, fan-outs and deep meta-pipelines."""

from __future__ import annotations

from typing import Any

from mlops_nocode.catalogue import Index
from mlops_nocode.spec import parse_document

API = "mlops-nocode/v1"


def playbook(name: str, entrypoint: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Playbook",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "runtime": "python",
            "python": {"entrypoint": entrypoint},
            "inputs": {"x": {"type": "json", "optional": True}},
            "outputs": {"y": {"type": "json"}},
            "parameters": {"type": "object", "properties": params or {}},
        },
    }


def dag(
    name: str,
    n: int,
    shape: str,
    uses: str = "playbook/noop",
    with_: dict[str, Any] | None = None,
    kind: str = "Pipeline",
) -> dict[str, Any]:
    """`chain`: each step consumes the previous one; `fanout`: one root feeding n-1 independent steps."""
    steps: list[dict[str, Any]] = []
    for i in range(n):
        step: dict[str, Any] = {"id": f"s{i}", "uses": uses, "with": dict(with_ or {})}
        if i and shape == "chain":
            step["inputs"] = {"x": f"s{i - 1}.y"}
        elif i and shape == "fanout":
            step["inputs"] = {"x": "s0.y"}
        steps.append(step)
    return {
        "apiVersion": API,
        "kind": kind,
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": steps},
    }


def runner_catalogue(n: int, shape: str) -> Index:
    docs = [
        playbook("noop", "bench.steps:noop"),
        playbook("fib", "bench.steps:fib_step", {"n": {"type": "integer", "default": 10}}),
        dag("bench", n, shape),
    ]
    return Index([parse_document(d) for d in docs])


def windmill_catalogue(n: int = 40) -> Index:
    docs = [
        playbook("fib", "bench.steps:fib_step", {"n": {"type": "integer", "default": 10}}),
        dag("fib-flow", n, "chain", uses="playbook/fib", with_={"n": 10}),
    ]
    return Index([parse_document(d) for d in docs])


def deep_catalogue(fanout: int, levels: int) -> Index:
    """A meta-pipeline tree `levels` deep whose leaves are `fanout**levels` playbook steps.

    Level 0 is the root MetaPipeline; the last graph level is a Pipeline of playbook steps. A parameter
    `seed` is passed down through every level.
    """
    params = {"type": "object", "properties": {"seed": {"type": "integer", "default": 1}}}
    docs: list[dict[str, Any]] = [playbook("leaf", "bench.steps:noop", {"seed": {"type": "integer"}})]
    child = "playbook/leaf"
    for level in range(levels - 1, -1, -1):
        kind = "Pipeline" if level == levels - 1 else "MetaPipeline"
        name = f"level-{level}"
        shape = "chain" if kind == "Pipeline" else "independent"
        doc = dag(name, fanout, shape, uses=child, with_={"seed": "${{ params.seed }}"}, kind=kind)
        doc["spec"]["parameters"] = params
        doc["spec"]["outputs"] = {"y": f"s{fanout - 1}.y"}
        docs.append(doc)
        child = f"{kind.lower()}/{name}"
    return Index([parse_document(d) for d in docs])
