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
        base = best_of(lambda: run_plan(plain, home))
        results.append(row(f"fan-out of {n}, gpu: 0", base, n))
        results.append(
            row(f"fan-out of {n}, gpu: 1 on 4 fake GPUs", best_of(lambda: run_plan(on_gpus, home)), n)
        )
        results[-1]["added_per_step_ms"] = round(1000 * (results[-1]["seconds"] - base) / n, 3)
    if not had:
        sys.modules.pop("pynvml", None)
    show(f"GPU scheduling ({report.reason or 'this machine has GPUs'})", results)
    return results


if __name__ == "__main__":
    main("--quick" in sys.argv)
