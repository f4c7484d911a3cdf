"""Inside one graph: the order of its steps (cycles included) and the checks of its connections."""

from __future__ import annotations

import graphlib
import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_nocode.compiler.plan import Binding
from mlops_nocode.spec import MetaPipeline, Pipeline, Problem
from mlops_nocode.spec.models import Port

if TYPE_CHECKING:
    from mlops_nocode.compiler.compile import Expanded

Graph = Pipeline | MetaPipeline


@dataclass(frozen=True, slots=True)
class Absent:
    """What a connection gives when it leads to a declared input that nothing connected."""

    what: str


Wire = Binding | Absent | None
"""A connection's value: a binding, Absent, or None when it failed (a problem is already recorded)."""


def step_order(doc: Graph, where: str) -> tuple[list[str], set[str], Problem | None]:
    """Every step id, each after the steps it needs; with a cycle, the steps in or after it (the second
    item) come last in declaration order, and the third item reports the cycle."""
    steps = doc.spec.steps
    ids = {s.id for s in steps}
    deps = {
        s.id: {d for d in [src.split(".", 1)[0] for src in s.inputs.values()] + s.depends_on if d in ids}
        for s in steps
    }
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for sid, ds in deps.items():
        sorter.add(sid, *ds)
    try:
        return list(sorter.static_order()), set(), None
    except graphlib.CycleError as e:
        cycle = " -> ".join(e.args[1][::-1])
        problem = Problem(
            f"steps form a cycle: {cycle}", where, "remove one of these connections so the steps form a DAG"
        )
    index = {s.id: i for i, s in enumerate(steps)}
    waiting = {sid: len(ds) for sid, ds in deps.items()}
    users: dict[str, list[str]] = defaultdict(list)
    for sid, ds in deps.items():
        for d in ds:
            users[d].append(sid)
    ready = [index[sid] for sid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        sid = steps[heapq.heappop(ready)].id
        order.append(sid)
        for u in users[sid]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, index[u])
    placed = set(order)
    cyclic = {s.id for s in steps if s.id not in placed}
    return order + [s.id for s in steps if s.id in cyclic], cyclic, problem


@dataclass
class Wiring:
    """Connections between steps, pipeline inputs and outputs, with the problems they raise."""

    problems: list[Problem] = field(default_factory=list)

    def connect(
        self,
        source: str,
        inputs: dict[str, Wire],
        done: dict[str, Expanded],
        doc: Graph,
        where: str,
        label: str,
    ) -> Wire:
        """What `source` (`STEP.OUTPUT` or `inputs.NAME`) gives inside `doc`."""
        sid, out = source.split(".", 1)
        if sid == "inputs":
            if out in inputs:
                return inputs[out]
            if out in doc.spec.inputs:  # declared, but the pipeline's user connects nothing to it
                return Absent(f"input {out!r} of {label}, which nothing connects here")
            self.problems.append(
                Problem(
                    f"{label} has no input {out!r}",
                    where,
                    f"declare it under spec.inputs (known inputs: {', '.join(doc.spec.inputs) or 'none'})",
                )
            )
            return None
        if sid not in done:
            steps = ", ".join(s.id for s in doc.spec.steps)
            self.problems.append(
                Problem(
                    f"dangling connection {source!r}: no step {sid!r} in {label}",
                    where,
                    f"connect to one of the steps: {steps}",
                )
            )
            return None
        exp = done[sid]
        if out in exp.outputs:
            return exp.outputs[out]
        if exp.failed:
            return None
        self.problems.append(
            Problem(
                f"dangling connection {source!r}: step {sid!r} has no output {out!r}",
                where,
                f"use one of its outputs: {', '.join(exp.outputs) or 'none'}",
            )
        )
        return None

    def wire(
        self, pinned: str, ports: dict[str, Port], wired: dict[str, Wire], where: str
    ) -> dict[str, Wire]:
        """Check connections against the ports of what a step uses: known names, types, required ones.
        Returns the connections to known ports, without the Absent ones."""
        for name, b in wired.items():
            port = ports.get(name)
            if port is None:
                self.problems.append(
                    Problem(
                        f"{pinned} has no input {name!r}",
                        f"{where} > inputs.{name}",
                        f"use one of: {', '.join(ports) or 'none'}",
                    )
                )
            elif isinstance(b, Absent):
                if not port.optional:
                    self.problems.append(
                        Problem(
                            f"required input {name!r} of {pinned} comes from {b.what}",
                            f"{where} > inputs.{name}",
                            "connect that input where the pipeline is used, or make it required there",
                        )
                    )
            elif b is not None and "any" not in (port.type, b.type) and port.type != b.type:
                source = f"{b.step}.{b.output}" if b.step else f"input {b.output!r}"
                self.problems.append(
                    Problem(
                        f"type mismatch: input {name!r} expects {port.type} but {source} is {b.type}",
                        f"{where} > inputs.{name}",
                        f"connect an output of type {port.type}",
                    )
                )
        for name, port in ports.items():
            if name not in wired and not port.optional:
                self.problems.append(
                    Problem(
                        f"required input {name!r} of {pinned} is not connected",
                        f"{where} > inputs",
                        f"add inputs: {{{name}: STEP.OUTPUT}}",
                    )
                )
        return {k: b for k, b in wired.items() if k in ports and not isinstance(b, Absent)}
