"""How `mlops plan` shows a plan: one line per step at any terminal width, big plans summarised."""

from __future__ import annotations

import json

from rich.console import RenderableType

from mlops_nocode.cli.tables import HEAD, MAX_ROWS, Cell, Col, counts_table, fitted, shorten, summarised
from mlops_nocode.compiler import Plan


def plan_view(plan: Plan, width: int, show_all: bool = False) -> list[RenderableType]:
    """The plan's steps (step, playbook, needs, target when not all local, parameters); past MAX_ROWS steps
    the first and last ones and the number of steps per namespace, unless `show_all`."""
    targets = {s.target.get("provider", "local") for s in plan.steps}
    cols = [
        Col("step", middle=True, weight=2.0),
        Col("playbook", middle=True, weight=1.5),
        Col("needs", min_terminal=100),
    ]
    if targets != {"local"}:
        cols.append(Col("target"))
    cols.append(Col("parameters"))
    rows: list[list[Cell]] = []
    for s in plan.steps:
        row: list[Cell] = [s.id, s.playbook.removeprefix("playbook/"), ", ".join(s.needs) or "-"]
        if targets != {"local"}:
            row.append(s.target.get("provider", "local"))
        row.append(", ".join(f"{k}={json.dumps(v)}" for k, v in s.params.items()))
        rows.append(row)
    where = "" if targets != {"local"} else ", all local"
    title = f"plan {plan.root}: {len(plan.steps):,} steps{where}"
    shown = summarised(rows, show_all, "steps")
    caption = "--all shows every step" if len(shown) < len(rows) else None
    out: list[RenderableType] = [fitted(title, cols, shown, width, caption)]
    if len(shown) < len(rows):
        namespaces = (s.id.split("/", 1)[0] if "/" in s.id else "(top level)" for s in plan.steps)
        out.append(counts_table("steps per namespace", "namespace", namespaces, width))
    if plan.outputs:
        lines = [f"  {k} <- {b.step}.{b.output}" for k, b in plan.outputs.items()]
        if len(lines) > MAX_ROWS and not show_all:
            lines = [*lines[:HEAD], f"  ⋯ {len(lines) - HEAD:,} more"]
        out.append("\n".join(["outputs:", *(str(shorten(line, width, middle=True)) for line in lines)]))
    return out
