"""Serve steps (`python -m bench.serving [--quick]`): how long a serve-model step takes to be healthy
(next to a python step loading the same model in the same run), the latency of POST /predict for 1 and
100 rows, and how long `stop` takes. A model is trained once, through a real Runner."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import row, show
from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_file, load_text

PLAYBOOKS = Path(__file__).resolve().parents[1] / "catalogue" / "playbooks"
PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: b, version: 1.0.0}
spec:
  steps:
    - {id: load, uses: playbook/sklearn-dataset}
    - {id: train, uses: playbook/sklearn-train, inputs: {dataset: load.dataset}}
    - id: serve
      uses: playbook/serve-model
      with: {name: bench-model, keep: true}
      inputs: {model: train.model}
    - {id: predict, uses: playbook/batch-predict, inputs: {model: train.model, dataset: load.dataset}}
"""


def _latency(client: httpx.Client, rows: list[list[float]], n: int) -> tuple[float, float]:
    for _ in range(5):
        client.post("/predict", json={"rows": rows})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.post("/predict", json={"rows": rows})
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main(quick: bool = False) -> list[dict[str, Any]]:
    docs = []
    for name in ("sklearn-dataset", "sklearn-train", "serve-model", "batch-predict"):
        docs += load_file(PLAYBOOKS / f"{name}.yaml")
    plan = compile_plan("pipeline/b", Index(docs + load_text(PIPELINE)))
    home = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    durations: dict[str, float] = {}

    def sink(e: Event) -> None:
        if e.type == "step.finished" and e.step in ("serve", "predict"):
            durations[str(e.step)] = float(e.data["duration"])

    result = Runner(plan, home=home, sink=sink).run()
    assert result.status == "succeeded", result.summary()
    svc = sv.load(home, "bench-model")
    assert svc is not None
    n = 50 if quick else 300
    one = [[5.1, 3.5, 1.4, 0.2]]
    hundred = one * 100
    with httpx.Client(base_url=svc.url, timeout=30, trust_env=False) as client:
        med1, p95_1 = _latency(client, one, n)
        med100, p95_100 = _latency(client, hundred, n)
    t = time.perf_counter()
    sv.stop(home, "bench-model")
    stop = time.perf_counter() - t
    rows = [
        row("python step loading the model (batch-predict, 150 rows)", durations["predict"], 1),
        row("serve-model step, start to healthy", durations["serve"], 1, durations["predict"], "python_step"),
        row(f"POST /predict 1 row, median of {n}", med1, 1),
        row(f"POST /predict 1 row, p95 of {n}", p95_1, 1),
        row(f"POST /predict 100 rows, median of {n}", med100, 100),
        row(f"POST /predict 100 rows, p95 of {n}", p95_100, 100),
        row("stop (SIGTERM, uvicorn shuts down)", stop, 1),
    ]
    show("serve steps", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
