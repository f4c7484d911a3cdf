"""What GPU scheduling adds to a run: the same fan-out of trivial Python steps with `gpu: 1` each on a
fake NVML with 4 devices (allocation, machine-wide locks, CUDA_VISIBLE_DEVICES, sampling) against
`gpu: 0` (no NVML asked), both 4 steps at a time; and discovery itself. No GPU needed:
`python -m bench.gpu_sched [--quick]`."""

from __future__ import annotations

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

WORKERS = 4


def plan_for(n: int, gpus: int) -> Plan:
    pb = playbook("noop", "bench.steps:noop")
    pb["spec"]["resources"] = {"gpu": gpus}
    return compile_plan("pipeline/bench", Index([parse_document(d) for d in (pb, dag("bench", n, "fanout"))]))


def run_plan(plan: Plan, home: Path) -> None:
    result = Runner(plan, home=home, use_cache=False, max_parallel=WORKERS).run()
    if result.status != "succeeded":
        raise RuntimeError(f"benchmark run failed: {result.summary()}")


def _fake_nvml() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fakenvml" / "pynvml.py"
    spec = importlib.util.spec_from_file_location("pynvml", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pynvml"] = module
    spec.loader.exec_module(module)
    uuid = "GPU-{:08x}-aaaa-bbbb-cccc-{:012x}"
    devices = [{"name": "NVIDIA H200", "uuid": uuid.format(i, i), "total_mib": 143771} for i in range(4)]
    module.configure({"devices": devices})
    return module


def _pool_cost(n: int = 5000) -> float:
    from mlops_nocode.runtime.gpualloc import GpuNeed, GpuPool
    from mlops_nocode.runtime.gpus import discover

    devices = [{"name": "NVIDIA H200", "uuid": f"GPU-{i}", "total_mib": 143771} for i in range(8)]
    _fake_nvml().configure({"devices": devices})
    with tempfile.TemporaryDirectory() as tmp:
        pool = GpuPool(discover(fresh=True).gpus, "", Path(tmp))
        t = time.perf_counter()
        for _ in range(n):
            pool.take("a", GpuNeed(2))
            pool.release("a")
        pool.release_all()
        return (time.perf_counter() - t) / n


def main(quick: bool = False) -> list[dict[str, Any]]:
    os.environ["THROTTLE_DISABLE"] = "true"
    repo = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    from mlops_nocode.runtime.gpus import discover

    t = time.perf_counter()
    report = discover(fresh=True)
    no_driver = time.perf_counter() - t
    had = "pynvml" in sys.modules
    _fake_nvml()
    n = 40 if quick else 100
    results = [row("discovery, no driver (pynvml not imported)", no_driver, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        plain, on_gpus = plan_for(n, 0), plan_for(n, 1)
        times: dict[int, list[float]] = {0: [], 1: []}
        for _ in range(3 if quick else 5):  # interleaved: a busy machine slows both alike
            for gpus, plan in ((0, plain), (1, on_gpus)):
                times[gpus].append(best_of(lambda: run_plan(plan, home), 1))  # noqa: B023
        base = min(times[0])
        results.append(row(f"fan-out of {n}, gpu: 0", base, n))
        results.append(row(f"fan-out of {n}, gpu: 1 on 4 fake GPUs", min(times[1]), n))
        results[-1]["added_per_step_ms"] = round(1000 * (results[-1]["seconds"] - base) / n, 3)
    results.append(row("take + release of 2 of 8 devices (the pool alone)", _pool_cost(), 1))
    if not had:
        sys.modules.pop("pynvml", None)
    show(f"GPU scheduling ({report.reason or 'this machine has GPUs'})", results)
    return results


if __name__ == "__main__":
    main("--quick" in sys.argv)
