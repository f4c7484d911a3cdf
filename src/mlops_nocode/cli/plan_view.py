"""How `mlops plan` shows a plan: one line per step at any terminal width, big plans summarised."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from rich.console import RenderableType

from mlops_nocode.cli.tables import HEAD, MAX_ROWS, Cell, Col, counts_table, fitted, shorten, summarised
from mlops_nocode.compiler import Plan
from mlops_nocode.compiler.plan import PlanStep

if TYPE_CHECKING:
    from mlops_nocode.runs.flow import Rendered


def plan_view(plan: Plan, width: int, show_all: bool = False) -> list[RenderableType]:
    """The plan's steps (step, playbook, needs, target when not all local, parameters); past MAX_ROWS steps
    the first and last ones and the number of steps per namespace, unless `show_all`."""
    targets = {_placed(s) for s in plan.steps}
    cols = [
        Col("step", middle=True, weight=2.0),
        Col("playbook", middle=True, weight=1.5),
        Col("needs", min_terminal=100),
    ]
    if targets != {"local"}:
        cols.append(Col("placed on"))
    cols.append(Col("parameters"))
    rows: list[list[Cell]] = []
    for s in plan.steps:
        row: list[Cell] = [s.id, s.playbook.removeprefix("playbook/"), ", ".join(s.needs) or "-"]
        if targets != {"local"}:
            row.append(_placed(s, offer=True))
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
    if targets != {"local"}:
        out.append(_deployments(plan, width))
    if plan.outputs:
        lines = [f"  {k} <- {b.step}.{b.output}" for k, b in plan.outputs.items()]
        if len(lines) > MAX_ROWS and not show_all:
            lines = [*lines[:HEAD], f"  ⋯ {len(lines) - HEAD:,} more"]
        out.append("\n".join(["outputs:", *(str(shorten(line, width, middle=True)) for line in lines)]))
    return out


def bundles_table(rendered: Rendered) -> RenderableType:
    """One line per deployment: provider, files, resources that would be created, cost."""
    from rich.table import Table

    cost = rendered.cost()
    total = "-" if cost["total"] is None else f"{cost['total']:g}"
    table = Table(
        title=f"deployments (creates nothing): {cost['per_hour']:g} {cost['currency']}/h, total {total}",
        title_justify="left",
    )
    for col in ("deployment", "provider", "files", "resources", "per hour", "total"):
        table.add_column(col)
    for b in rendered.bundles:
        resources = ", ".join(f"{r.get('type')}.{r.get('name')}" for r in b.resources) or "-"
        table.add_row(
            b.deployment,
            b.provider,
            ", ".join(b.files) or "-",
            shorten(resources, 80),
            f"{b.price_per_hour:g}",
            "-" if b.total is None else f"{b.total:g}",
        )
    return table


def write_bundles(folder: Path, plan: Plan, rendered: Rendered, as_json: bool) -> None:
    """`folder`/plan.json and each deployment's bundle under `folder`/<deployment>/ (files only inside)."""
    from mlops_nocode.cli.report import fail
    from mlops_nocode.spec import Problem

    try:
        folder.mkdir(parents=True, exist_ok=True)
        plan.dump(folder / "plan.json")
        for b in rendered.bundles:
            for rel in b.files:
                if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
                    raise OSError(f"bundle file {rel!r} of {b.deployment} would land outside its folder")
            b.write(folder / b.deployment)
    except OSError as e:
        fail([Problem(f"cannot write under {folder}: {e}", "--out", "give a writable folder")], as_json)


def _placed(step: PlanStep, offer: bool = False) -> str:
    p = step.placement
    if not p:
        return str(step.target.get("provider", "local"))
    if not offer or p.get("provider") == "local":
        return str(p.get("provider"))
    return f"{p.get('provider')} {(p.get('offer') or {}).get('id', '')}"


def _deployments(plan: Plan, width: int) -> str:
    """One paragraph per deployment: where its steps go, the price per hour and why (with the runner-up)."""
    groups: dict[str, list[PlanStep]] = {}
    for s in plan.steps:
        groups.setdefault(str((s.placement or {}).get("deployment", "-")), []).append(s)
    lines = ["placement:"]
    for name, steps in groups.items():
        p = steps[0].placement or {}
        lines.append(f"  {name}: {len(steps):,} step(s), {p.get('price_per_hour', 0):.4g} USD/h")
        lines.append(f"    why: {p.get('why', '-')}")
        if p.get("runner_up"):
            lines.append(f"    runner-up: {p['runner_up'].get('why', '')}")
    return "\n".join(str(shorten(line, width * 3)) for line in lines)
