"""Rendering `metapipeline/ml-portfolio` for every remote target (k3s, exoscale, runpod, vastai), next
to the compile time of the same plan measured in the same run (target: rendering under 100 ms).

Each target's provider comes from the registry (runs.flow.provider_for); a provider whose module is not
installed is listed as such, not timed. Rendering = place + group into deployments + provider.render
(creates nothing)."""

from __future__ import annotations

import sys
from typing import Any

from bench.harness import best_of, row, show
from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runs.flow import place, provider_for, render

TARGETS = ("k3s", "exoscale", "runpod", "vastai")
REF = "metapipeline/ml-portfolio"


def main(quick: bool = False) -> list[dict[str, Any]]:
    catalogue = configured_catalogue([])
    repeat = 3 if quick else 7
    n = len(compile_plan(REF, catalogue).steps)
    t_compile = best_of(lambda: compile_plan(REF, catalogue), repeat)
    rows = [row(f"compile {REF} ({n} steps)", t_compile, n)]
    missing, placed = [], []
    for target in TARGETS:
        if provider_for(target) is None:
            missing.append(target)
            continue
        launch = {"provider": target, "options": {}}
        plan = place(compile_plan(REF, catalogue, {}, launch), launch)
        placed.append(plan)
        t = best_of(lambda plan=plan: render(plan), repeat)  # type: ignore[misc]
        rows.append(
            row(f"render {target} ({len(render(plan).bundles)} bundle(s))", t, n, t_compile, "compile")
        )
    if placed:
        t_all = best_of(lambda: [render(p) for p in placed], repeat)
        rows.append(row(f"render all {len(placed)} targets", t_all, n, t_compile, "compile"))
    local = place(compile_plan(REF, catalogue), None)
    t_local = best_of(lambda: render(local), repeat)
    rows.append(row("render local (nothing to provision)", t_local, n, t_compile, "compile"))
    show("rendering targets", rows)
    if missing:
        print(f"not benched (provider module not installed here): {', '.join(missing)}")
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
