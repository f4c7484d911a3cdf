"""A Python step's `ctx.metric` values become `metric` events while it runs (a training loss curve is
seen live), redacted like its log, and the values written at the end still arrive once each."""

from __future__ import annotations

from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text

SPEC = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: curve, version: 1.0.0}
spec:
  runtime: python
  python:
    entrypoint: main
    code: |
      import os, time
      def main(*, gate: str, ctx) -> dict:
          ctx.metric("loss", 1.5, step="1")
          ctx.metric("token", 7, secret=os.environ["CURVE_KEY"])
          deadline = time.monotonic() + 30
          while not os.path.exists(gate) and time.monotonic() < deadline:
              time.sleep(0.02)
          if not os.path.exists(gate):
              raise RuntimeError("the first value was not seen while the step ran")
          ctx.metric("loss", 0.5, step="2")
          return {"done": "yes"}
  parameters: {type: object, properties: {gate: {type: string}}}
  secrets: [CURVE_KEY]
  outputs: {done: {type: text}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: curve-run, version: 1.0.0}
spec:
  steps:
    - {id: fit, uses: playbook/curve, with: {gate: GATE}}
"""


def test_metric_values_arrive_while_the_step_runs(home: Path, tmp_path: Path) -> None:
    gate = tmp_path / "seen"
    events: list[Event] = []

    def sink(e: Event) -> None:
        events.append(e)
        if e.type == "metric" and e.data["name"] == "loss" and e.data["value"] == 1.5:
            assert not any(x.type == "step.finished" for x in events)
            gate.write_text("seen")

    plan = compile_plan("pipeline/curve-run", Index(load_text(SPEC.replace("GATE", str(gate)))))
    result = Runner(plan, sink=sink, use_cache=False, environ={"CURVE_KEY": "s3cr3t-curve-key"}).run()
    assert result.status == "succeeded", result.summary()
    metrics = [(e.data["name"], e.data["value"], e.data["labels"]) for e in events if e.type == "metric"]
    assert metrics == [
        ("loss", 1.5, {"step": "1"}),
        ("token", 7.0, {"secret": "***"}),
        ("loss", 0.5, {"step": "2"}),
    ]
    assert "s3cr3t-curve-key" not in repr(events)
