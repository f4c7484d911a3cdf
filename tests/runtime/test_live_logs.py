"""A step's log lines become events while it runs (not only when it ends), redacted, bounded."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.logfollow import LogFollower
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text
from tests.conftest import PLAYBOOKS

COMMAND = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: shake, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [PYTHON, -c, "import sys, time, pathlib; f = pathlib.Path(sys.argv[1]); print('ready for', f);
           [time.sleep(0.02) for _ in range(1500) if not f.exists()]; sys.exit(0 if f.exists() else 7)",
           "${{ params.file }}"]
  parameters: {type: object, properties: {file: {type: string}}}
""".replace("PYTHON", sys.executable)


class Answerer:
    """A sink that creates the file a step waits for as soon as the step's "ready" line arrives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        line = str(event.data.get("line", ""))
        if event.type == "log" and line.startswith("ready for "):
            assert not any(e.type == "step.finished" for e in self.events)
            Path(line.removeprefix("ready for ")).write_text("go")


def _run(docs: str, steps: str) -> tuple[str, list[Event]]:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: live, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    plan = compile_plan("pipeline/live", Index(load_text(docs) + load_text(spec)))
    sink = Answerer()
    result = Runner(plan, sink=sink, use_cache=False).run()
    errors = {sid: s.error for sid, s in result.steps.items() if s.error}
    assert result.status == "succeeded", errors
    return result.status, sink.events


def test_python_step_logs_arrive_while_it_runs(tmp_path: Path) -> None:
    file = tmp_path / "answer-py"
    _, events = _run(
        PLAYBOOKS, f"- {{id: s, uses: playbook/call, with: {{action: handshake, arg: '{file}'}}}}"
    )
    lines = [e.data["line"] for e in events if e.type == "log"]
    assert lines == [f"ready for {file}", "answered"]  # each line once


def test_command_step_logs_arrive_while_it_runs(tmp_path: Path) -> None:
    file = tmp_path / "answer-cmd"
    _, events = _run(COMMAND, f"- {{id: s, uses: playbook/shake, with: {{file: '{file}'}}}}")
    assert [e.data["line"] for e in events if e.type == "log"] == [f"ready for {file}"]


def test_follower_sends_complete_lines_then_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"one\ntw")
    f = LogFollower(log, {"API": "hunter2-secret"}, limit=100, tail=10)
    assert list(f.poll()) == ["one"]
    assert list(f.poll()) == []
    with log.open("ab") as w:
        w.write(b"o hunter2-secret\nthree")
    assert list(f.poll()) == ["two ***"]
    assert list(f.rest()) == ["three"]


def test_follower_past_its_limit_sends_a_note_and_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    f = LogFollower(log, {}, limit=4, tail=3)
    assert list(f.poll()) == ["line 0", "line 1", "line 2", "line 3"]
    with log.open("a") as w:
        w.write("".join(f"line {i}\n" for i in range(10, 50)) + "last")
    assert list(f.poll()) == []
    rest = list(f.rest())
    assert rest == [
        "… 44 line(s) not shown here (the step's log file has them all)",
        "line 48",
        "line 49",
        "last",
    ]


def test_follower_limit_reached_at_the_end(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("".join(f"l{i}\n" for i in range(20)))
    f = LogFollower(log, {}, limit=5, tail=2)
    assert list(f.rest()) == [
        "l0",
        "l1",
        "l2",
        "l3",
        "l4",
        "… 13 line(s) not shown here (the step's log file has them all)",
        "l18",
        "l19",
    ]


def test_follower_tail_of_a_log_bigger_than_a_read(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("first\n")
    f = LogFollower(log, {}, limit=1, tail=2)
    assert list(f.poll()) == ["first"]
    with log.open("a") as w:
        w.write("".join(f"line {i}\n" for i in range(100_000)))  # ~1.2 MB, several reads
    assert list(f.rest()) == [
        "… 99998 line(s) not shown here (the step's log file has them all)",
        "line 99998",
        "line 99999",
    ]


METRIC_STEP = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: learner, version: 1.0.0}
spec:
  runtime: python
  secrets: [LABEL_SECRET]
  python:
    code: |
      import os, pathlib, time
      def main(ctx, file: str):
          ctx.metric("loss", 2.5, step="1", who=os.environ["LABEL_SECRET"])
          f = pathlib.Path(file)
          for _ in range(1500):
              if f.exists():
                  break
              time.sleep(0.02)
          ctx.metric("loss", 1.25, step="2")
          return {"waited": f.exists()}
  parameters: {type: object, properties: {file: {type: string}}}
  outputs: {waited: {type: json}}
"""


class MetricAnswerer(Answerer):
    """Creates the file the step waits for once its first metric arrived as an event."""

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.type == "metric" and event.data.get("value") == 2.5:
            assert not any(e.type == "step.finished" for e in self.events)
            Path(self.file).write_text("go")

    file = ""


def test_metrics_arrive_while_the_step_runs_redacted_and_once(tmp_path: Path) -> None:
    """What ctx.metric reports reaches the run as it is reported (a loss curve is followed live), each
    value once, with secret values masked in its labels."""
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: live-metrics, version: 1.0.0}
spec:
  steps:
    - {id: s, uses: playbook/learner, with: {file: FILE}}
""".replace("FILE", str(tmp_path / "go"))
    plan = compile_plan("pipeline/live-metrics", Index(load_text(METRIC_STEP) + load_text(spec)))
    sink = MetricAnswerer()
    sink.file = str(tmp_path / "go")
    environ = {"LABEL_SECRET": "s3cr3t-label-value"}
    result = Runner(plan, sink=sink, use_cache=False, environ=environ).run()
    assert result.status == "succeeded", result.steps["s"].error
    assert result.steps["s"].outputs["waited"]["value"] is True
    metrics = [(e.data["value"], e.data["labels"]) for e in sink.events if e.type == "metric"]
    assert metrics == [(2.5, {"step": "1", "who": "***"}), (1.25, {"step": "2"})]
