"""The executor registry and the thread-driven executors' plumbing (executors/jobs.py), through a real
Runner: an executor registered by a test runs a sequence of confined commands, is cancelled and timed out
with its process group killed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.runtime import executors
from mlops_nocode.runtime.attempt import StepFailure
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.executors.jobs import StepThread, ThreadExecutor, failed
from mlops_nocode.runtime.runner import Runner
from tests.conftest import none_left, processes_with


class Sequence(ThreadExecutor):
    """Runs each argv of `params.argvs` in turn; its output `n` counts them."""

    runtime = "test-seq"

    def body(self, job: StepThread) -> dict[str, Any]:
        argvs = job.a.step.params["argvs"]
        for i, argv in enumerate(argvs):
            job.log(f"== command {i}")
            code = job.command(argv)
            if code != 0:
                raise failed(f"command {i}", code)
        return {"n": len(argvs)}


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    executors.register("test-seq", Sequence)
    yield
    executors._classes.pop("test-seq", None)


def plan_of(params: dict[str, Any], timeout: float | None = None) -> Plan:
    step = PlanStep(
        id="s",
        playbook="playbook/seq@1.0.0",
        digest="d",
        runtime="test-seq",
        params=params,
        inputs={},
        outputs={"n": "json"},
        needs=(),
        timeout=timeout,
        cache=False,
    )
    return Plan("pipeline/p@1.0.0", {}, (step,), {})


def test_unknown_runtime_is_named_with_what_runs() -> None:
    with pytest.raises(
        executors.UnknownRuntime, match=r"no executor runs runtime 'nope' \(this version runs: "
    ):
        executors.executor_class("nope")
    assert {"python", "command", "test-seq"} <= executors.runtimes_for("local")
    assert "test-seq" not in executors.runtimes_for("runpod")  # it declares local targets only
    assert {"python", "command"} <= executors.runtimes_for("runpod")


def test_a_sequence_of_commands_runs_in_order_into_one_log(tmp_path: Path) -> None:
    events: list[Event] = []
    argvs = [["sh", "-c", "echo first"], ["sh", "-c", "echo second >&2"]]
    r = Runner(plan_of({"argvs": argvs}), home=tmp_path, sink=events.append).run()
    assert r.status == "succeeded", r.summary()
    assert r.steps["s"].outputs["n"]["value"] == 2
    lines = [e.data["line"] for e in events if e.type == "log"]
    assert lines == ["== command 0", "first", "== command 1", "second"], lines


def test_a_failing_command_fails_the_step_with_its_reason(tmp_path: Path) -> None:
    argvs = [["sh", "-c", "exit 3"], ["sh", "-c", "echo never"]]
    r = Runner(plan_of({"argvs": argvs}), home=tmp_path).run()
    assert r.status == "failed"
    assert r.steps["s"].error == "command 0 exited with code 3 (see the step's log)"


def test_timeout_kills_the_command_and_what_it_left(tmp_path: Path) -> None:
    marker = f"mlops-seq-timeout-{time.time_ns()}"
    script = f"(exec -a {marker} sleep 300) & exec -a {marker} sleep 300"
    r = Runner(plan_of({"argvs": [["bash", "-c", script]]}, timeout=1.0), home=tmp_path).run()
    assert r.status == "failed"
    assert "timed out after 1s" in (r.steps["s"].error or "")
    assert none_left(marker), processes_with(marker)


def test_cancel_stops_the_sequence(tmp_path: Path) -> None:
    marker = f"mlops-seq-cancel-{time.time_ns()}"
    argvs = [["bash", "-c", f"exec -a {marker} sleep 300"], ["sh", "-c", "echo never"]]
    runner = Runner(plan_of({"argvs": argvs}), home=tmp_path)
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    end = time.monotonic() + 30
    while not processes_with(marker) and time.monotonic() < end:
        time.sleep(0.05)
    assert processes_with(marker), "the command never started"
    runner.cancel()
    t.join(30)
    assert result and result[0].status == "cancelled"
    assert none_left(marker), processes_with(marker)
    assert "never" not in (tmp_path / "runs" / runner.run_id / "steps" / "s@1.log").read_text()


def test_body_errors_become_the_steps_error(tmp_path: Path) -> None:
    class Broken(ThreadExecutor):
        runtime = "test-seq"

        def body(self, job: StepThread) -> dict[str, Any]:
            raise StepFailure("the module has no outputs block")

    executors.register("test-seq", Broken)
    r = Runner(plan_of({"argvs": []}), home=tmp_path).run()
    assert r.steps["s"].error == "the module has no outputs block"
    assert not [t for t in threading.enumerate() if t.name.startswith("step s#")]
