"""Compiling a generated meta-pipeline 5 levels deep with 10,000 leaf steps, and its linearity.

Baseline measured in the same run: the same tree with 10x fewer leaves (1,000), so the ratio says how
compile time grows with size (linear is 10x; the target allows at most 12x).
"""

from __future__ import annotations

import sys
from typing import Any

from bench.harness import best_of, row, show
from bench.specs import deep_catalogue
from mlops_nocode.compiler import compile_plan


def main(quick: bool = False) -> list[dict[str, Any]]:
    small, big = deep_catalogue(10, 3), deep_catalogue(10, 4)
    n_small = len(compile_plan("metapipeline/level-0", small).steps)
    n_big = len(compile_plan("metapipeline/level-0", big).steps)
    repeat = 3 if quick else 7
    t_small = best_of(lambda: compile_plan("metapipeline/level-0", small), repeat)
    t_big = best_of(lambda: compile_plan("metapipeline/level-0", big), repeat)
    rows = [
        row(f"compile {n_small} leaves (4 levels + leaves)", t_small, n_small),
        row(f"compile {n_big} leaves (5 levels + leaves)", t_big, n_big, t_small, "1k_leaves"),
    ]
    show("compiler scale", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
