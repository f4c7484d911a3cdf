"""Trivial step functions used by the benchmarks."""

from __future__ import annotations

from typing import Any


def noop(*, x: Any = None) -> dict[str, Any]:
    return {"y": 1}


def fibo(n: int) -> int:
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)


def fib_step(*, n: int = 10, x: Any = None) -> dict[str, Any]:
    return {"y": fibo(n)}


def sleep_step(*, ms: int = 50, x: Any = None) -> dict[str, Any]:
    import time

    time.sleep(ms / 1000)
    return {"y": 1}
