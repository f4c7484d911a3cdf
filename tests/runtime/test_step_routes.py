"""Python steps get the model routes of the Runner's MLOPS_HOME (MLOPS_LLM_ROUTES: names, models and URLs,
never key values), since they cannot read MLOPS_HOME themselves; a broken routes file is a clear failure."""

from __future__ import annotations

import json
from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.integrations.litellm.routes import ModelRoute, routes_path, save_route
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text

CODE = "import os\n\ndef main():\n    return {'routes': os.environ.get('MLOPS_LLM_ROUTES')}\n"
SPEC = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: peek-routes, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(CODE)}}}
  outputs: {{routes: {{type: json}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: p, version: 1.0.0}}
spec:
  steps: [{{id: peek, uses: playbook/peek-routes}}]
"""


def run() -> tuple[RunResult, list[Event]]:
    plan = compile_plan("pipeline/p", Index(load_text(SPEC)))
    events: list[Event] = []
    return Runner(plan, sink=events.append, use_cache=False).run(), events


def test_a_python_step_sees_the_routes_without_key_values(home: Path) -> None:
    result, _ = run()
    assert result.status == "succeeded" and result.steps["peek"].outputs["routes"]["value"] is None
    save_route(home, ModelRoute(name="chat", model="openai/x", api_base="http://127.0.0.1:9/v1",
                                api_key_secret="OPENAI_KEY"))  # fmt: skip
    result, _ = run()
    assert result.status == "succeeded"
    routes = json.loads(result.steps["peek"].outputs["routes"]["value"])
    assert routes == [
        {"name": "chat", "model": "openai/x", "kind": "chat", "api_base": "http://127.0.0.1:9/v1",
         "api_key_secret": "OPENAI_KEY", "fallbacks": [], "source": "config"}
    ]  # fmt: skip


def test_a_broken_routes_file_fails_the_step_clearly(home: Path) -> None:
    routes_path(home).parent.mkdir(parents=True, exist_ok=True)
    routes_path(home).write_text("routes: {not: a list}\n")
    result, events = run()
    assert result.status == "failed"
    failed = [e for e in events if e.type == "step.failed"]
    assert failed and "the model routes cannot be read" in json.dumps(failed[0].data)
