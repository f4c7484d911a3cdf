"""A Runner that runs only its deployment's steps: inputs made on another deployment are awaited in the
shared step results (cancellable, bounded), and its own steps' ends are published there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mlops_nocode.compiler import Plan
from mlops_nocode.runs.compiling import prepare
from mlops_nocode.runtime.handoff import LocalStepResults
from mlops_nocode.runtime.runner import Runner
from tests.deploy.test_two_targets import DEP, PROVIDERS, PYPATH, docs, started_in


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Plan:
    monkeypatch.setenv("PROVIDER_MODULES", PROVIDERS)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("THROTTLE_DISABLE", "true")
    return prepare(docs())


def runner(plan: Plan, home: Path, run_id: str, **kw: float) -> Runner:
    return Runner(plan, home=home, run_id=run_id, deployment="local",
                  results=LocalStepResults(home / "results"), **kw)  # type: ignore[arg-type]  # fmt: skip


def test_two_runner_processes_share_one_run(plan: Plan, tmp_path: Path) -> None:
    home = tmp_path / "home"
    plan_file = tmp_path / "plan.json"
    plan.dump(plan_file)
    env = {**os.environ, "PYTHONPATH": PYPATH}
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(plan_file)]
    remote = subprocess.Popen([*argv, "--deployment", DEP, "--run-id", "r1", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    result = runner(plan, home, "r1").run()
    out, errors = remote.communicate(timeout=120)
    assert remote.returncode == 0, errors
    assert result.status == "succeeded"
    assert result.outputs == {"final": ["prep", "train", "report"]}  # "trained" is the other Runner's
    summary = json.loads(out)
    assert set(summary["steps"]) == {"prep/hop", "train/hop"}  # its own step, and the input it awaited
    assert summary["outputs"] == {"trained": ["prep", "train"]}
    record = LocalStepResults(home / "results").get("r1", "train/hop")
    assert record is not None and record["deployment"] == DEP and record["status"] == "succeeded"
    assert started_in(home / "runs" / f"r1.{DEP}") == ["train/hop"]  # each Runner ran its own steps only
    assert started_in(home / "runs" / "r1") == ["prep/hop", "report/hop"]


def test_waiting_for_another_deployment_is_cancellable(plan: Plan, tmp_path: Path) -> None:
    r = runner(plan, tmp_path / "home", "r2")
    results = LocalStepResults(tmp_path / "home" / "results")

    def cancel_once_waiting() -> None:  # prep is done: the Runner now awaits train, made elsewhere
        deadline = time.monotonic() + 60
        while results.get("r2", "prep/hop") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        r.cancel()

    threading.Thread(target=cancel_once_waiting, daemon=True).start()
    result = r.run()
    assert result.status == "cancelled"
    assert result.steps["report/hop"].status == "cancelled"
    published = LocalStepResults(tmp_path / "home" / "results").get("r2", "report/hop")
    assert published is not None and published["status"] == "cancelled"


def test_an_input_that_never_comes_fails_after_the_wait(plan: Plan, tmp_path: Path) -> None:
    result = runner(plan, tmp_path / "home", "r3", input_wait=0.3).run()
    assert result.status == "failed"
    assert "no result from its deployment" in str(result.steps["train/hop"].error)
    assert result.steps["report/hop"].status == "skipped"
    assert result.steps["prep/hop"].status == "succeeded"


def test_a_failed_step_elsewhere_skips_what_needs_it(plan: Plan, tmp_path: Path) -> None:
    home = tmp_path / "home"
    LocalStepResults(home / "results").put(
        "r4", "train/hop", {"status": "failed", "outputs": {}, "error": "boom", "deployment": DEP}
    )
    result = runner(plan, home, "r4").run()
    assert result.status == "failed"
    assert result.steps["train/hop"].error == f"failed on {DEP}"
    assert result.steps["report/hop"].status == "skipped"


def test_execute_refuses_an_unknown_deployment_and_a_missing_run_id(plan: Plan, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan.dump(plan_file)
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(plan_file), "--json"]
    env = {**os.environ, "PYTHONPATH": PYPATH}
    unknown = subprocess.run([*argv, "--deployment", "gpu"], capture_output=True, text=True, env=env)
    assert unknown.returncode != 0 and "no deployment 'gpu'" in unknown.stdout
    no_id = subprocess.run([*argv, "--deployment", DEP], capture_output=True, text=True, env=env)
    assert no_id.returncode != 0 and "needs the run's id" in no_id.stdout
    bad_id = subprocess.run([*argv, "--deployment", DEP, "--run-id", "../x"], capture_output=True,
                            text=True, env=env)  # fmt: skip
    assert bad_id.returncode != 0 and "invalid run id" in bad_id.stdout


def test_a_hostile_deployment_name_in_a_plan_file_is_refused(plan: Plan, tmp_path: Path) -> None:
    data = plan.to_json()
    data["steps"][1]["placement"]["deployment"] = "../../escape"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(plan_file), "--json"]
    env = {**os.environ, "PYTHONPATH": PYPATH}
    done = subprocess.run([*argv, "--deployment", "../../escape", "--run-id", "r5"], capture_output=True,
                          text=True, env=env)  # fmt: skip
    assert done.returncode != 0
    assert "invalid deployment name '../../escape' of step train/hop" in done.stdout
    assert not (tmp_path / "home" / "escape").exists() and not (tmp_path / "escape").exists()


def test_one_runner_drives_several_deployments_of_a_run(plan: Plan, tmp_path: Path) -> None:
    """A worker's Runner runs the local and the ray deployments of a plan together (given as a set);
    `mlops execute --deployment NAME,NAME` does the same."""
    home = tmp_path / "home"
    results = LocalStepResults(home / "results")
    both = Runner(plan, home=home, run_id="r5", deployment=("local", DEP), results=results).run()
    assert both.status == "succeeded"
    assert both.outputs == {"final": ["prep", "train", "report"], "trained": ["prep", "train"]}
    record = results.get("r5", "train/hop")
    assert record is not None and record["deployment"] == DEP  # each step published under its own
    plan_file = tmp_path / "plan.json"
    plan.dump(plan_file)
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(plan_file), "--json"]
    env = {**os.environ, "PYTHONPATH": PYPATH}
    done = subprocess.run([*argv, "--deployment", f"local,{DEP}", "--run-id", "r6"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["steps"]) == {"prep/hop", "train/hop", "report/hop"}
    assert (home / "runs" / f"r6.local+{DEP}").is_dir()  # (its steps came from the first run's cache)
