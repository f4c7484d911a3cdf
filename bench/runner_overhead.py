"""Per-step overhead of the local runner (fork server, one process per step) on chain and fan-out DAGs.

Baselines measured in the same run: (a) one bare `python -c pass` process per step, scheduled the same way
(sequentially for a chain, `cpu_count` at a time for a fan-out), and (b) an in-process ThreadPool + graphlib
scheduler calling the same function (the floor: no isolation at all).
"""

from __future__ import annotations

import graphlib
import os
import subprocess
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from bench.specs import runner_catalogue, windmill_catalogue
from bench.steps import fib_step, noop
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime.runner import Runner


def run_plan(plan: Plan, home: Path) -> None:
    result = Runner(plan, home=home, use_cache=False).run()
    if result.status != "succeeded":
        raise RuntimeError(f"benchmark run failed: {result.summary()}")


def bare_processes(plan: Plan, workers: int) -> None:
    ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter({s.id: s.needs for s in plan.steps})
    ts.prepare()
    with ThreadPoolExecutor(workers) as pool:
        running: dict[Future[Any], str] = {}
        while ts.is_active():
            for sid in ts.get_ready():
                running[pool.submit(subprocess.run, [sys.executable, "-c", "pass"], check=True)] = sid
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
                ts.done(running.pop(f))


def thread_pool(plan: Plan, workers: int, fn: Any = noop) -> None:
    ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter({s.id: s.needs for s in plan.steps})
    ts.prepare()
    params = {s.id: s.params for s in plan.steps}
    with ThreadPoolExecutor(workers) as pool:
        running: dict[Future[Any], str] = {}
        while ts.is_active():
            for sid in ts.get_ready():
                running[pool.submit(fn, **params[sid])] = sid
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
                ts.done(running.pop(f))


def main(quick: bool = False) -> list[dict[str, Any]]:
    os.environ["THROTTLE_DISABLE"] = "true"
    repo = str(Path(__file__).resolve().parents[1])  # step processes import bench.steps from here
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    workers = os.cpu_count() or 2
    results = []
    sizes = (100,) if quick else (100, 500)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for shape in ("chain", "fanout"):
            for n in sizes:
                plan = compile_plan("pipeline/bench", runner_catalogue(n, shape))
                w = 1 if shape == "chain" else workers
                floor = best_of(lambda: thread_pool(plan, w))  # noqa: B023
                bare = best_of(lambda: bare_processes(plan, w), repeat=1 if n > 100 else 2)  # noqa: B023
                ours = best_of(lambda: run_plan(plan, home))  # noqa: B023
                rows = [
                    row(f"{shape}-{n} threadpool floor", floor, n),
                    row(f"{shape}-{n} bare python process", bare, n, floor, "floor"),
                    row(f"{shape}-{n} mlops runner", ours, n, floor, "floor"),
                ]
                rows[-1]["ratio_vs_bare_process"] = round(ours / bare, 3)
                rows[-1]["overhead_per_step_ms"] = round(1000 * (ours - floor) / n, 3)
                show(f"runner overhead: {shape} of {n} trivial steps", rows)
                results += rows
        plan = compile_plan("pipeline/fib-flow", windmill_catalogue(40))
        floor = best_of(lambda: thread_pool(plan, 1, fib_step))
        ours = best_of(lambda: run_plan(plan, home))
        rows = [
            row("fib-flow-40 in-process floor", floor, 40),
            row("fib-flow-40 mlops runner", ours, 40, floor, "floor"),
        ]
        show("Windmill's 40-step sequential fibo(10) flow", rows)
        results += rows
    return results


if __name__ == "__main__":
    main("--quick" in sys.argv)
