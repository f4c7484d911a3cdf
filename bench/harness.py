"""Timing helpers: best-of-N wall times, and a table of results with ratios to baselines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of `repeat` wall-clock runs, in seconds (noise only ever adds time)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def row(
    name: str, seconds: float, n: int, baseline: float | None = None, base_name: str = ""
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "case": name,
        "seconds": round(seconds, 5),
        "per_item_ms": round(1000 * seconds / n, 4),
    }
    if baseline:
        r[f"ratio_vs_{base_name}"] = round(seconds / baseline, 3)
    return r


def show(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n## {title}")
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r.get(k, "")) for k in keys))
