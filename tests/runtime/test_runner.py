"""The local runner: parallelism, isolation, retries, timeouts, caching, secrets, output checks."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.conftest import PLAYBOOKS


def run_steps(
    steps: str, *, retries: int | None = None, extra: str = "", **kw: Any
) -> tuple[RunResult, list[Event]]:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
{textwrap.indent(textwrap.dedent(extra), "  ")}
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    docs = load_text(PLAYBOOKS) + load_text(spec)
    plan = compile_plan("pipeline/t", Index(docs))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, **kw).run()
    return result, events


def test_chain_passes_values_and_reports_metrics_and_logs() -> None:
    r, events = run_steps(
        """
- {id: a, uses: playbook/add, with: {n: 2}}
- {id: b, uses: playbook/add, with: {n: 3}, inputs: {x: a.y}}
""",
        extra="outputs: {total: b.y}",
    )
    assert r.status == "succeeded"
    assert r.outputs == {"total": 5}
    types = [e.type for e in events]
    assert types[0] == "run.started" and types[-1] == "run.finished"
    assert any(e.type == "metric" and e.step == "b" and e.data["value"] == 5 for e in events)
    assert any(e.type == "log" and e.step == "b" and "add 3 -> 5" in e.data["line"] for e in events)
    assert (r.run_dir / "events.jsonl").read_text().count("\n") == len(events)


def test_independent_steps_run_in_parallel() -> None:
    r, _ = run_steps(
        """
- {id: a, uses: playbook/call, with: {action: stamp}}
- {id: b, uses: playbook/call, with: {action: stamp}}
""",
        extra="outputs: {a: a.y, b: b.y}",
        max_parallel=2,
        use_cache=False,
    )
    (a0, a1), (b0, b1) = r.outputs["a"], r.outputs["b"]
    assert a0 < b1 and b0 < a1, "the two steps' run intervals should overlap"


@pytest.mark.parametrize(
    ("action", "arg", "error"),
    [
        ("exit", 3, "step called sys.exit(3)"),
        ("os_exit", 4, "exited with code 4 without a result"),
        ("segv", 0, "killed by signal SIGSEGV"),
        ("raise", "boom", "RuntimeError: boom"),
        ("undeclared", 0, "returned undeclared outputs ['zzz']"),
    ],
)
def test_a_crashing_step_fails_alone(action: str, arg: Any, error: str) -> None:
    r, events = run_steps(f"""
- {{id: bad, uses: playbook/call, with: {{action: {action}, arg: {arg}}}}}
- {{id: after, uses: playbook/add, inputs: {{x: bad.y}}}}
- {{id: other, uses: playbook/add}}
""")
    assert r.status == "failed"
    assert r.steps["bad"].status == "failed" and error in (r.steps["bad"].error or "")
    assert r.steps["after"].status == "skipped"
    assert r.steps["other"].status == "succeeded"
    assert any(e.type == "step.skipped" and e.step == "after" for e in events)


def test_retries_then_succeeds(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    r, events = run_steps(
        f"- {{id: f, uses: playbook/call, with: {{action: flaky, arg: '{counter}'}}, retries: 2}}"
    )
    assert r.status == "succeeded" and r.steps["f"].attempts == 2
    assert [e.type for e in events if e.step == "f" and e.type.startswith("step.")] == [
        "step.started",
        "step.failed",
        "step.retrying",
        "step.started",
        "step.finished",
    ]


def test_retries_exhausted(tmp_path: Path) -> None:
    r, _ = run_steps("- {id: f, uses: playbook/call, with: {action: raise, arg: x}, retries: 2}")
    assert r.status == "failed" and r.steps["f"].attempts == 3


def test_timeout_kills_the_step_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    r, _ = run_steps(
        f"- {{id: s, uses: playbook/call, with: {{action: spawn_child_sleep, arg: '{pids}'}}, timeout: 1.5s}}"
    )
    assert r.status == "failed" and "timed out after 1.5s" in (r.steps["s"].error or "")
    for pid in map(int, pids.read_text().split()):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_cache_reuses_outputs_and_no_cache_forces(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    steps = f"""
- {{id: c, uses: playbook/call, with: {{action: count, arg: '{counter}'}}}}
- {{id: d, uses: playbook/add, inputs: {{x: c.y}}}}
"""
    run_steps(steps)
    r2, events = run_steps(steps)
    assert counter.read_text() == "x"
    assert r2.steps["c"].cached and r2.steps["d"].cached and r2.status == "succeeded"
    assert any(e.type == "step.finished" and e.data["cached"] for e in events)
    run_steps(steps, use_cache=False)
    assert counter.read_text() == "xx"
    r4, _ = run_steps(steps.replace("add,", "add, with: {n: 7},"))
    assert r4.steps["c"].cached and not r4.steps["d"].cached


def test_secrets_come_from_the_environment_and_are_redacted() -> None:
    steps = "- {id: s, uses: playbook/call, with: {action: secret, arg: '${{ secrets.API_TOKEN }}'}}"
    r, events = run_steps(steps, environ={"API_TOKEN": "hunter2-very-secret"})
    assert r.status == "succeeded"
    logs = [e.data["line"] for e in events if e.type == "log"]
    assert any("the secret is ***" in line for line in logs)
    assert "hunter2-very-secret" not in (r.run_dir / "events.jsonl").read_text()
    assert "hunter2-very-secret" not in (r.run_dir / "plan.json").read_text()
    logs_on_disk = [f for f in (r.run_dir / "steps").rglob("*.log") if f.is_file()]
    assert logs_on_disk, "the step's log file should exist (the loop below must check something)"
    assert any("the secret is ***" in f.read_text() for f in logs_on_disk)
    for log in logs_on_disk:
        assert "hunter2-very-secret" not in log.read_text()
    r, _ = run_steps(steps, environ={})
    assert r.status == "failed" and "secret 'API_TOKEN' is not set" in (r.steps["s"].error or "")


def test_command_runtime(tmp_path: Path) -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: echo, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [PYTHON, -c, "import sys, json; open(sys.argv[2], 'w').write(json.dumps({'words': sys.argv[1]}))",
           "${{ params.text }}", "${{ outputs.result }}"]
    outputs: {result: result.json}
  outputs: {result: {type: json}}
  parameters: {type: object, properties: {text: {type: string}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: c, version: 1.0.0}
spec:
  steps: [{id: e, uses: playbook/echo, with: {text: "a b; rm -rf /"}}]
  outputs: {r: e.result}
""".replace("PYTHON", sys.executable)
    plan = compile_plan("pipeline/c", Index(load_text(spec)))
    r = Runner(plan).run()
    assert r.status == "succeeded", r.steps["e"].error
    assert r.outputs == {"r": {"words": "a b; rm -rf /"}}


def test_missing_command_is_named() -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: nope, version: 1.0.0}
spec: {runtime: command, command: {argv: [definitely-not-a-binary-xyz]}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: c, version: 1.0.0}
spec: {steps: [{id: e, uses: playbook/nope}]}
"""
    r = Runner(compile_plan("pipeline/c", Index(load_text(spec)))).run()
    assert "command not found: 'definitely-not-a-binary-xyz'" in (r.steps["e"].error or "")


def test_no_step_processes_left_behind() -> None:
    me = psutil.Process(os.getpid())
    run_steps("- {id: a, uses: playbook/add}\n- {id: b, uses: playbook/add, with: {n: 2}}")
    assert [c for c in me.children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE] == []
