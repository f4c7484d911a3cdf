"""Everything named after a step id works for any id: deep nesting makes ids thousands of characters long,
and a plan from elsewhere may hold any character in one."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text
from tests.conftest import PLAYBOOKS

DEPTH = 40


def nested_specs(depth: int) -> str:
    """Pipelines p0..p{depth}: p0 runs `add` once; each next one nests the previous and adds 1 to it."""
    docs = [
        "apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata: {name: p0, version: 1.0.0}\n"
        "spec:\n  steps: [{id: leaf-step-with-a-long-descriptive-name, uses: playbook/add}]\n"
        "  outputs: {y: leaf-step-with-a-long-descriptive-name.y}\n"
    ]
    for i in range(1, depth + 1):
        inner = f"level-{i:02d}-nested-pipeline-with-a-descriptive-name"
        docs.append(
            f"apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata: {{name: p{i}, version: 1.0.0}}\n"
            f"spec:\n  steps:\n    - {{id: {inner}, uses: pipeline/p{i - 1}}}\n"
            f"    - {{id: add-one-more, uses: playbook/add, inputs: {{x: {inner}.y}}}}\n"
            "  outputs: {y: add-one-more.y}\n"
        )
    return "\n---\n".join(docs)


def assert_file_names_fit(run_dir: Path) -> None:
    for p in (run_dir / "steps").iterdir():
        assert len(os.fsencode(p.name)) <= 255


def test_a_pipeline_nested_forty_levels_runs(home: Path) -> None:
    docs = load_text(PLAYBOOKS) + load_text(nested_specs(DEPTH))
    plan = compile_plan(f"pipeline/p{DEPTH}", Index(docs))
    deepest = max(len(s.id) for s in plan.steps)
    assert deepest > 1900
    r = Runner(plan).run()
    assert r.status == "succeeded", {k: s.error for k, s in r.steps.items() if s.error}
    assert r.outputs == {"y": DEPTH + 1}
    assert_file_names_fit(r.run_dir)
    names = sorted(p.name for p in (r.run_dir / "steps").iterdir())
    assert "add-one-more@1.log" in names  # a short id keeps its readable name
    again = Runner(plan).run()  # the cache, keyed by hashes, serves every step of the nested run
    assert again.status == "succeeded" and all(s.cached for s in again.steps.values())


def test_a_step_id_of_thousands_of_any_characters(home: Path) -> None:
    weird = "ünï cödé/../$(x)\t..\\" * 200 + "/end"
    assert len(weird) > 3000
    add = {
        "playbook": "playbook/add@1.0.0",
        "digest": "d",
        "runtime": "python",
        "entrypoint": "steps:add",
        "params": {"n": 2},
        "inputs": {},
        "outputs": {"y": "json"},
        "needs": [],
    }
    echo = {
        "playbook": "playbook/echo@1.0.0",
        "digest": "e",
        "runtime": "command",
        "command": {
            "argv": ["python3", "-c", "import sys; open(sys.argv[1], 'w').write('3')", "${{ outputs.y }}"],
            "outputs": {"y": "y.json"},
        },
        "params": {},
        "inputs": {},
        "outputs": {"y": "json"},
        "needs": [],
    }
    plan = Plan.from_json(
        {
            "format": "mlops-nocode/plan/v1",
            "root": "pipeline/weird@1.0.0",
            "steps": [add | {"id": weird}, echo | {"id": weird + "-cmd"}, echo | {"id": "."}],
            "outputs": {"a": {"step": weird, "output": "y"}, "c": {"step": weird + "-cmd", "output": "y"}},
        }
    )
    r = Runner(plan, use_cache=False).run()
    assert r.status == "succeeded", {k[:40]: s.error for k, s in r.steps.items()}
    assert r.outputs == {"a": 2, "c": 3}
    assert_file_names_fit(r.run_dir)
    events = [json.loads(line) for line in (r.run_dir / "events.jsonl").read_text().splitlines()]
    assert {e["step"] for e in events if e["type"] == "step.finished"} == {weird, weird + "-cmd", "."}
