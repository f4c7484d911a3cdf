"""Nothing a step started outlives its Runner, even after `kill -9` of the Runner: the fork server and
each of its children are child subreapers that end every descendant, setsid or not."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.conftest import PLAYBOOKS, spawn_mlops, wait_for_text

# A command that leaves a child in its group, one in its own session, an orphan in its own session, and
# the child of an orphan shell in its own session, then writes "$$ child setsid orphan grandchild" to $1.
SPAWNER = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: spawner, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [sh, -c, 'sleep 1000 & a=$!; setsid sleep 1000 & b=$!; (setsid sleep 1000 & echo $! > "$1.c");
                    (setsid sh -c "sleep 1000 & echo \\$! > $1.d; wait" &);
                    while [ ! -s "$1.d" ]; do sleep 0.01; done;
                    echo "$$ $a $b $(cat "$1.c") $(cat "$1.d")" > "$1"; wait', sh, "${{ params.file }}"]
  parameters: {type: object, properties: {file: {type: string}}}
"""


def spawning_pipeline(tmp_path: Path) -> str:
    return (
        PLAYBOOKS
        + "---"
        + SPAWNER
        + f"""
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: spawns, version: 1.0.0}}
spec:
  steps:
    - {{id: cmd, uses: playbook/spawner, with: {{file: "{tmp_path / "cmd.pids"}"}}}}
    - {{id: py, uses: playbook/call, with: {{action: daemonize, arg: "{tmp_path / "py.pids"}"}}}}
"""
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def step_processes(tmp_path: Path) -> list[int]:
    """The pids both steps wrote (each step, and what it started), once they are all running."""
    pids = [int(p) for name in ("cmd.pids", "py.pids") for p in wait_for_text(tmp_path / name).split()]
    assert len(pids) == 8 and all(map(alive, pids)), pids
    return pids


def wait_all_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    try:
        while any(map(alive, pids)):
            assert time.monotonic() < deadline, [p for p in pids if alive(p)]
            time.sleep(0.05)
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_nothing_a_step_started_survives_kill_9_of_its_runner(
    tmp_path: Path, write_spec: Callable[[str, str], Path]
) -> None:
    spec = write_spec(spawning_pipeline(tmp_path), "spawns.yaml")
    proc = spawn_mlops("run", str(spec), "--no-cache", "--parallel", "2")
    try:
        pids = step_processes(tmp_path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_all_gone(pids)
    finally:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.communicate()


def test_nothing_a_step_started_survives_its_end(tmp_path: Path) -> None:
    """A step that returns (or exits) while what it started still runs: those processes are ended."""
    from mlops_nocode.catalogue import Index
    from mlops_nocode.compiler import compile_plan
    from mlops_nocode.runtime.runner import Runner
    from mlops_nocode.spec import load_text

    spec = SPAWNER.replace("; wait'", "'")  # the command exits at once, leaving its processes running
    docs = load_text(
        PLAYBOOKS
        + "---"
        + spec
        + f"""
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: leave, version: 1.0.0}}
spec:
  steps:
    - {{id: cmd, uses: playbook/spawner, with: {{file: "{tmp_path / "cmd.pids"}"}}}}
    - {{id: py, uses: playbook/call, with: {{action: daemon}}}}
"""
    )
    r = Runner(compile_plan("pipeline/leave", Index(docs)), use_cache=False).run()
    assert r.status == "succeeded", {k: s.error for k, s in r.steps.items()}
    pids = [int(p) for p in (tmp_path / "cmd.pids").read_text().split()[1:]]
    pids.append(int(r.steps["py"].outputs["y"]["value"]))
    wait_all_gone(pids, timeout=10)
