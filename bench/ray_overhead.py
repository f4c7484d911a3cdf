"""The Runner driving steps as Ray tasks, on a real two-node Ray cluster on loopback.

(a) Per-step overhead for a chain and a fan-out of trivial python steps (`bench.steps:noop`) placed on the
    `ray` target, against plain Ray tasks running the same function with the same task options
    (`ray_conn.task_options`), scheduled the same way, through the same driver connection, in the same
    run: a chain waits for each task before submitting the next; a fan-out runs the root, then submits
    the others at once. The ratio is the figure (goal: under 1.5x plain Ray).
(b) Wall time of a fan-out of 50 ms steps (`bench.steps:sleep_step`) on Ray against the local runner
    (fork server), both with the same number of slots (the cluster's CPUs = the Runner's max_parallel).

    .venv/bin/python -m bench.ray_overhead [--quick]
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from bench.specs import dag, playbook
from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import parse_document

STOPPED: list[Any] = []
"""The clusters this process started and stopped (tests check that nothing of them is left)."""
SLOTS_PER_NODE = 4  # logical CPUs per node (the steps sleep or do nothing: no core is really needed)


def plan_for(shape: str, n: int, uses: str = "playbook/noop") -> Plan:
    docs = [
        playbook("noop", "bench.steps:noop"),
        playbook("sleep", "bench.steps:sleep_step", {"ms": {"type": "integer", "default": 50}}),
        dag("bench", n, shape, uses=uses),
    ]
    return compile_plan("pipeline/bench", Index([parse_document(d) for d in docs]))


def on_ray(plan: Plan, address: str) -> Plan:
    """The plan placed on a `ray` target (as placement writes it)."""
    target = {"provider": "ray", "options": {"address": address}}
    placement = {"provider": "ray", "deployment": "ray", "offer": None, "price_per_hour": 0.0}
    steps = tuple(dataclasses.replace(s, target=target, placement=placement) for s in plan.steps)
    return dataclasses.replace(plan, steps=steps)


def run_plan(plan: Plan, home: Path, parallel: int | None = None) -> None:
    result = Runner(plan, home=home, use_cache=False, max_parallel=parallel).run()
    if result.status != "succeeded":
        raise RuntimeError(f"benchmark run failed: {result.summary()}")


def plain_ray(plan: Plan, shape: str, options: dict[str, Any]) -> None:
    """The same function as plain Ray tasks with the steps' task options, in the DAG's order."""
    import ray

    from bench.steps import noop

    fn = ray.remote(noop).options(**options)
    value = ray.get(fn.remote())
    if shape == "chain":
        for _ in plan.steps[1:]:
            value = ray.get(fn.remote(x=value))
    else:
        ray.get([fn.remote(x=value) for _ in plan.steps[1:]])


def overhead(
    address: str, home: Path, sizes: tuple[int, ...], repeat: int, slots: int
) -> list[dict[str, Any]]:
    from mlops_nocode.runtime.executors import ray_conn

    results = []
    for shape in ("chain", "fanout"):
        for n in sizes:
            plan = on_ray(plan_for(shape, n), address)
            opts = ray_conn.task_options(plan.steps[0], {"address": address})
            opts.pop("name")
            run_plan(plan, home, slots)  # warm: the workers' start and first imports are not per step
            plain_ray(plan, shape, opts)
            plain = best_of(lambda: plain_ray(plan, shape, opts), repeat)  # noqa: B023
            # as many steps in flight as the cluster has slots (plain Ray submits them all at once)
            ours = best_of(lambda: run_plan(plan, home, slots), repeat)  # noqa: B023
            rows = [
                row(f"{shape}-{n} plain ray tasks", plain, n),
                row(f"{shape}-{n} mlops runner on ray", ours, n, plain, "plain_ray"),
            ]
            rows[-1]["overhead_per_step_ms"] = round(1000 * (ours - plain) / n, 3)
            if shape == "fanout":  # the Runner's default: this machine's CPU count, whatever the cluster
                capped = best_of(lambda: run_plan(plan, home), repeat)  # noqa: B023
                rows.append(row(f"{shape}-{n} same, default max_parallel", capped, n, plain, "plain_ray"))
            show(f"ray overhead: {shape} of {n} trivial steps", rows)
            results += rows
    return results


def fanout_sleep(address: str, home: Path, n: int, slots: int) -> list[dict[str, Any]]:
    plan = plan_for("fanout", n, uses="playbook/sleep")
    warm = plan_for("fanout", 2 * slots + 1, uses="playbook/sleep")  # every slot's worker started
    run_plan(warm, home, slots)
    run_plan(on_ray(warm, address), home, slots)
    local = best_of(lambda: run_plan(plan, home, slots), 1)
    ray_plan = on_ray(plan, address)
    ours = best_of(lambda: run_plan(ray_plan, home, slots), 1)
    floor = 0.05 * (1 + -(-(n - 1) // slots))  # the root, then (n-1)/slots waves of 50 ms
    rows = [
        row(f"fanout-{n} x 50 ms, ideal ({slots} slots)", floor, n),
        row(f"fanout-{n} x 50 ms, local runner", local, n, floor, "ideal"),
        row(f"fanout-{n} x 50 ms, mlops runner on ray", ours, n, floor, "ideal"),
    ]
    rows[-1]["ratio_vs_local"] = round(ours / local, 3)
    show(f"a fan-out of {n} steps of 50 ms, {slots} slots", rows)
    return rows


def main(quick: bool = False) -> list[dict[str, Any]]:
    from mlops_nocode.runtime.executors import ray_conn
    from tests.ray.cluster import Cluster

    os.environ["THROTTLE_DISABLE"] = "true"
    repo = str(Path(__file__).resolve().parents[1])  # steps and Ray workers import bench.steps from here
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    cluster = Cluster()
    started = time.perf_counter()
    try:
        nodes = 1 if quick else 2  # --quick (its test): one node, the cluster starts in half the time
        cluster.start_head(cpus=SLOTS_PER_NODE)
        if nodes == 2:
            cluster.add_node("worker", cpus=SLOTS_PER_NODE)
        cluster.wait_started()
        ray_conn.connect(cluster.address)
        cluster.node_ids(nodes)  # every node alive, seen through this driver's connection
        up = time.perf_counter() - started
        print(f"ray cluster of {nodes} node(s) on 127.0.0.1 up in {up:.1f} s", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            sizes = (10,) if quick else (100, 500)
            results = overhead(cluster.address, home, sizes, 1 if quick else 3, nodes * SLOTS_PER_NODE)
            results += fanout_sleep(cluster.address, home, 20 if quick else 500, nodes * SLOTS_PER_NODE)
        return results
    finally:
        ray_conn.disconnect()
        cluster.stop()
        STOPPED.append(cluster)


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
