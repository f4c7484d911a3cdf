"""Runner edge cases: secrets through nesting, big payloads, cache invalidation, odd outputs, leftovers."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.conftest import METRICS_PLAYBOOK, PLAYBOOKS


def run_spec(spec: str, root: str = "pipeline/t", **kw: Any) -> tuple[RunResult, list[Event]]:
    docs = load_text(PLAYBOOKS + METRICS_PLAYBOOK) + load_text(textwrap.dedent(spec))
    plan = compile_plan(root, Index(docs))
    events: list[Event] = []
    return Runner(plan, sink=events.append, **kw).run(), events


NESTED_SECRET = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: inner, version: 1.0.0}
spec:
  parameters: {type: object, properties: {tok: {type: string}}}
  steps: [{id: use, uses: playbook/call, with: {action: echo, arg: "${{ params.tok }}"}}]
  outputs: {y: use.y}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps: [{id: sub, uses: pipeline/inner, with: {tok: "${{ secrets.MY_TOKEN }}"}}]
  outputs: {y: sub.y}
"""


def test_secret_passed_down_a_nesting_level_is_resolved_redacted_and_not_cached() -> None:
    r, _ = run_spec(NESTED_SECRET, environ={"MY_TOKEN": "s3cr3t-value-42"})
    assert r.status == "succeeded", r.summary()
    assert r.steps["sub/use"].step.secrets == ("MY_TOKEN",)
    assert r.outputs == {"y": "***"}  # the step got the real value; what leaves the run is redacted
    files = [f for f in r.run_dir.rglob("*") if f.is_file()]
    assert any(f.suffix == ".log" for f in files) and any(f.name == "events.jsonl" for f in files), files
    for f in files:
        assert "s3cr3t-value-42" not in f.read_text(errors="replace"), f
    r2, _ = run_spec(NESTED_SECRET, environ={"MY_TOKEN": "another-value-77"})
    assert not r2.steps["sub/use"].cached


def test_secret_in_metric_labels_and_text_outputs_is_redacted() -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps: [{id: m, uses: playbook/call, with: {action: secret_metric, arg: "${{ secrets.TOK }}"}}]
  outputs: {y: m.y}
"""
    r, events = run_spec(spec, environ={"TOK": "zzz-leak-me"})
    assert r.status == "succeeded"
    assert r.outputs["y"] == "token=***"
    assert any(e.type == "metric" and e.data["labels"] == {"token": "***"} for e in events)
    files = [f for f in r.run_dir.rglob("*") if f.is_file()]
    assert any(f.suffix == ".log" for f in files) and any(f.name == "events.jsonl" for f in files), files
    for f in files:
        assert "zzz-leak-me" not in f.read_text(errors="replace"), f


def test_parameters_larger_than_a_datagram() -> None:
    big = [f"feature_{i:05d}" for i in range(8000)]
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps: [{{id: b, uses: playbook/call, with: {{action: echo, arg: {json.dumps(big)}}}}}]
  outputs: {{y: b.y}}
"""
    r, _ = run_spec(spec)
    assert r.status == "succeeded", r.summary()
    assert r.outputs["y"] == big


def test_editing_a_step_module_invalidates_the_cache(tmp_path: Path, monkeypatch: Any) -> None:
    module = tmp_path / "mystep.py"
    module.write_text("def f():\n    return {'y': 'v1'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ['PYTHONPATH']}")
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: mine, version: 1.0.0}
spec: {runtime: python, python: {entrypoint: "mystep:f"}, outputs: {y: {type: json}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec: {steps: [{id: s, uses: playbook/mine}], outputs: {y: s.y}}
"""
    assert run_spec(spec)[0].outputs == {"y": "v1"}
    module.write_text("def f():\n    return {'y': 'v2'}\n")
    r, _ = run_spec(spec)
    assert r.outputs == {"y": "v2"} and not r.steps["s"].cached
    module.write_text("def f():\n    return {'y': 'v3'}\n")
    assert run_spec(spec, use_cache=False)[0].outputs == {"y": "v3"}
    r, _ = run_spec(spec)  # --no-cache refreshed the cache
    assert r.outputs == {"y": "v3"} and r.steps["s"].cached


def test_numpy_values_are_converted_and_nan_is_refused() -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: arr, uses: playbook/call, with: {action: numpy}}
    - {id: nan, uses: playbook/call-metrics, with: {action: nan}}
  outputs: {arr: arr.y}
"""
    r, _ = run_spec(spec)
    assert r.outputs == {"arr": [0, 1, 2]}
    assert r.steps["nan"].status == "failed"
    assert "metrics" in (r.steps["nan"].error or "") or "NaN" in (r.steps["nan"].error or "")


def test_processes_a_successful_step_leaves_behind_are_killed() -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec: {steps: [{id: d, uses: playbook/call, with: {action: daemon}}], outputs: {pid: d.y}}
"""
    r, _ = run_spec(spec, use_cache=False)
    assert r.status == "succeeded"
    pid = r.outputs["pid"]
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the step's background child survived the step"
        time.sleep(0.05)
