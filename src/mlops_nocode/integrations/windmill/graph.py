"""The DAG of a pipeline's steps as Windmill can draw it: levels of steps that may run together."""

from __future__ import annotations

from mlops_nocode.spec.models import Step


def needs(step: Step) -> list[str]:
    """The steps `step` waits for: those it takes inputs from, then its `depends_on`, each once."""
    wired = [src.split(".", 1)[0] for src in step.inputs.values()]
    return list(dict.fromkeys([*wired, *step.depends_on]))


def levels(steps: list[Step]) -> list[list[Step]]:
    """Steps grouped by depth (a step's level is one more than its deepest need's), in spec order.

    A Windmill flow is a sequence of modules; a level of several steps becomes one `branchall`
    module whose branches run in parallel, so every step still starts after all it needs.
    """
    depth: dict[str, int] = {}
    by_id = {s.id: s for s in steps}

    def level(step: Step, seen: tuple[str, ...] = ()) -> int:
        if step.id in depth:
            return depth[step.id]
        if step.id in seen:  # a cycle: the compiler reports it; keep the spec order here
            return 0
        parents = [by_id[n] for n in needs(step) if n in by_id]
        depth[step.id] = 1 + max((level(p, (*seen, step.id)) for p in parents), default=-1)
        return depth[step.id]

    out: list[list[Step]] = []
    for s in steps:
        d = level(s)
        while len(out) <= d:
            out.append([])
        out[d].append(s)
    return [group for group in out if group]
