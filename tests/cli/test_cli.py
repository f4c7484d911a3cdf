"""The CLI's contract: validate/plan/run/execute on files and refs, exit codes, nothing written on error."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.conftest import PLAYBOOKS, CliResult, spawn_mlops, wait_for_text, wait_gone

Mlops = Callable[..., CliResult]

PIPE = """
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: first, version: 1.0.0}
spec:
  steps: [{id: a, uses: playbook/add}]
  outputs: {y: a.y}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: second, version: 1.0.0}
spec:
  parameters: {type: object, properties: {n: {type: integer, default: 4}}}
  steps:
    - {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}}
    - {id: b, uses: playbook/add, with: {n: 1}, inputs: {x: a.y}}
  outputs: {y: b.y}
"""


def test_run_acts_on_the_last_pipeline_of_a_multi_document_file(
    mlops: Mlops, write_spec: Callable[..., Path]
) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    r = mlops("run", str(f), "--json")
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": 5}
    r = mlops("run", str(f), "--json", "--set", "n=10")
    assert r.json()["outputs"] == {"y": 11}
    r = mlops("run", str(f), "--json", "--pipeline", "first")
    assert r.json()["outputs"] == {"y": 1}


def test_validate_reports_every_document(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    r = mlops("validate", str(f), "--json")
    assert r.code == 0, r
    assert r.json()["status"] == "valid" and len(r.json()["documents"]) == 4
    bad = write_spec(PLAYBOOKS + PIPE.replace("a.y}\n---", "a.q}\n---"), "bad.yaml")
    r = mlops("validate", str(bad))
    assert r.code == 2
    assert "pipeline/first > outputs.y" in r.stderr and "has no output 'q'" in r.stderr and "fix:" in r.stderr


def test_invalid_spec_exits_2_and_writes_nothing(
    mlops: Mlops, write_spec: Callable[..., Path], home: Path, tmp_path: Path
) -> None:
    bad = write_spec(PLAYBOOKS + PIPE.replace("with: {n: 1}", "with: {n: -1}"))
    before = sorted(p.name for p in home.rglob("*")) if home.exists() else []
    out = tmp_path / "plan.json"
    for cmd in (["run", str(bad)], ["plan", str(bad), "--out", str(out)], ["validate", str(bad)]):
        r = mlops(*cmd)
        assert r.code == 2, r
        assert "pipeline/second > steps[1] (b) > with.n" in r.stderr
    assert not out.exists()
    after = sorted(p.name for p in home.rglob("*")) if home.exists() else []
    assert after == before
    r = mlops("run", str(bad), "--json")
    assert r.json()["status"] == "invalid" and r.json()["problems"][0]["where"]


def test_unknown_ref_and_missing_file(mlops: Mlops) -> None:
    r = mlops("run", "pipeline/iris-clasifier")
    assert r.code == 2 and "did you mean pipeline/iris-classifier" in r.stderr
    r = mlops("run", "no/such/file.yaml")
    assert r.code == 2 and "neither a file nor a ref" in r.stderr


def test_plan_then_execute(mlops: Mlops, write_spec: Callable[..., Path], tmp_path: Path) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    out = tmp_path / "plan.json"
    r = mlops("plan", str(f), "--out", str(out), "--set", "n=2")
    assert r.code == 0, r
    assert "second" in r.stdout and "b" in r.stdout
    plan = json.loads(out.read_text())
    assert [s["id"] for s in plan["steps"]] == ["a", "b"]
    r = mlops("plan", "metapipeline/ml-portfolio", "--json")
    assert r.code == 0 and len(r.json()["steps"]) > 10
    r = mlops("execute", str(out), "--json")
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": 3}
    r = mlops("execute", str(out), "--events", "-")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[0]["type"] == "run.started" and lines[-1]["type"] == "run.finished"


def test_unavailable_target_is_refused(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    f = write_spec(PLAYBOOKS + PIPE)
    r = mlops("plan", str(f), "--target", "exoscale", module="providers", env={"TEST_HIDE": "exoscale"})
    assert r.code == 2 and "target provider 'exoscale' is not available" in r.stderr
    r = mlops("plan", str(f), "--target", "exoscale", "--json")  # a provider module renders, creating nothing
    assert r.code == 0, r
    assert [b["provider"] for b in r.json()["bundles"]] == ["exoscale"] and r.json()["cost"]["per_hour"] > 0


def test_schema_export(mlops: Mlops, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    r = mlops("schema", "--out", str(out))
    assert r.code == 0
    schema = json.loads(out.read_text())
    assert schema["$schema"].endswith("2020-12/schema") and "Playbook" in json.dumps(schema)


def test_failed_run_exits_1(mlops: Mlops, write_spec: Callable[..., Path]) -> None:
    f = write_spec(
        PLAYBOOKS
        + """
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: boom, version: 1.0.0}
spec:
  steps: [{id: a, uses: playbook/call, with: {action: raise, arg: kaput}}]
"""
    )
    r = mlops("run", str(f), "--json")
    assert r.code == 1
    assert r.json()["status"] == "failed" and "kaput" in r.json()["steps"]["a"]["error"]


def test_ctrl_c_cancels_cleanly(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    f = write_spec(
        PLAYBOOKS
        + f"""
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: slow, version: 1.0.0}}
spec:
  steps:
    - {{id: sleeper, uses: playbook/call, with: {{action: spawn_child_sleep, arg: '{pid_file}'}}}}
    - {{id: after, uses: playbook/add, depends_on: [sleeper]}}
"""
    )
    proc = spawn_mlops("run", str(f), "--json")
    try:
        wait_for_text(pid_file)
        step_pids = [int(p) for p in pid_file.read_text().split()]
        tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "cancelled"
    assert summary["steps"]["sleeper"]["status"] == "cancelled"
    assert summary["steps"]["after"]["status"] == "cancelled"
    wait_gone([*step_pids, *tree])


def test_validate_checks_reusable_pipelines_that_need_inputs(
    mlops: Mlops, write_spec: Callable[..., Path]
) -> None:
    sub = """
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: reusable, version: 1.0.0}
spec:
  inputs: {x: {type: json}}
  steps: [{id: a, uses: playbook/add, inputs: {x: inputs.x}}]
  outputs: {y: a.y}
"""
    f = write_spec(PLAYBOOKS + sub)
    r = mlops("validate", str(f))
    assert r.code == 0, r
    r = mlops("validate", str(write_spec(PLAYBOOKS + sub.replace("inputs.x}", "inputs.z}"), "bad.yaml")))
    assert r.code == 2 and "has no input 'z'" in r.stderr
    r = mlops("run", str(f))
    assert r.code == 2 and "needs inputs x and cannot run on its own" in r.stderr
    r = mlops("validate", "pipeline/iris-classifier", "-c", "catalogue")
    assert r.code == 0, r
