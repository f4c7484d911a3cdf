"""Per-step overhead of the local runner (fork server, one process per step) on chain and fan-out DAGs.

Baselines measured in the same run: (a) one bare `python -c pass` process per step, scheduled the same way
(sequentially for a chain, `cpu_count` at a time for a fan-out), and (b) an in-process ThreadPool + graphlib
scheduler calling the same function (the floor: no isolation at all).
"""

from __future__ import annotations

import graphlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from bench.specs import runner_catalogue, windmill_catalogue
from bench.steps import fib_step, noop
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime.runner import Runner


def plan_for(shape: str, n: int) -> Plan:
    return compile_plan("pipeline/bench", runner_catalogue(n, shape))


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
                plan = plan_for(shape, n)
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


def worker(shape: str, n: int, repeat: int) -> None:
    """One tree's side of `--compare`: print the best-of-`repeat` Runner time as JSON."""
    plan = plan_for(shape, n)
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run_plan(plan, Path(tmp))  # warm: first-run costs (the sandbox's walk of /etc) are not per step
        for _ in range(repeat):
            t, c = time.perf_counter(), os.times()
            run_plan(plan, Path(tmp))
            walls.append(time.perf_counter() - t)
            d = os.times()
            # CPU of the runner, its fork server and the steps (reaped children count once waited for)
            cpus.append(
                sum(
                    getattr(d, k) - getattr(c, k)
                    for k in ("user", "system", "children_user", "children_system")
                )
            )
    print(json.dumps({"seconds": min(walls), "cpu_seconds": sorted(cpus)[len(cpus) // 2]}))


def cli(argv: list[str]) -> None:
    """`[--quick]`, `--compare [REF] [--rounds N] [--quick]` (bench/overhead_compare.py), or `--worker`."""
    if "--worker" in argv:
        i = argv.index("--worker")
        worker(argv[i + 1], int(argv[i + 2]), int(argv[i + 3]))
        return
    if "--compare" in argv:
        from bench import overhead_compare

        i = argv.index("--compare")
        ref = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
        sizes = (100,) if "--quick" in argv else (100, 300)
        overhead_compare.compare(ref or overhead_compare.default_ref(), rounds, sizes)
        return
    main("--quick" in argv)


if __name__ == "__main__":
    cli(sys.argv[1:])
