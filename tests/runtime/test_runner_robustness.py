"""What steps may do to the runner: odd outputs, forks, killing the fork server, modifying inputs."""

from __future__ import annotations

import os
import signal
import stat
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.conftest import FILE_PLAYBOOK, PLAYBOOKS, call_playbook, wait_for_text

DIR_PLAYBOOK = "---" + call_playbook("call-dir", "directory", optional=False)


def run_spec(spec: str, **kw: Any) -> RunResult:
    docs = load_text(PLAYBOOKS + FILE_PLAYBOOK + DIR_PLAYBOOK) + load_text(textwrap.dedent(spec))
    return Runner(compile_plan("pipeline/t", Index(docs)), **kw).run()


def pipeline(steps: str, outputs: str = "{}") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
  outputs: {outputs}
"""


def test_same_content_under_two_names_is_stored_and_read_only() -> None:
    r = run_spec(
        pipeline(
            """
- {id: a, uses: playbook/call-file, with: {action: write_same, arg: a.txt}}
- {id: b, uses: playbook/call-file, with: {action: write_same, arg: b.txt}}
""",
            "{a: a.y, b: b.y}",
        )
    )
    assert r.status == "succeeded", r.summary()
    a, b = Path(r.outputs["a"]), Path(r.outputs["b"])
    assert a.name == "a.txt" and b.name == "b.txt" and a.parent == b.parent
    assert a.read_text() == b.read_text() == "same content"
    assert not a.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_symlinks_in_a_folder_output_are_refused_even_to_inside() -> None:
    r = run_spec(pipeline("- {id: d, uses: playbook/call-dir, with: {action: symlink_dir}}", "{d: d.y}"))
    assert r.status == "failed"
    assert "'tree/abslink.txt' is a symbolic link" in (r.steps["d"].error or ""), r.steps["d"].error


def test_a_process_forked_by_a_step_does_not_report_for_it() -> None:
    r = run_spec(
        pipeline("- {id: f, uses: playbook/call, with: {action: fork_return}}", "{y: f.y}"), use_cache=False
    )
    assert r.outputs == {"y": "parent"}


def test_killing_the_fork_server_fails_its_steps_and_leaves_nothing_running(tmp_path: Path) -> None:
    """The test kills the server from outside (a confined step may not signal it, see test_sandbox)."""
    pid_file = tmp_path / "pid"

    def kill_server() -> None:
        os.kill(psutil.Process(int(wait_for_text(pid_file))).ppid(), signal.SIGKILL)

    killer = threading.Thread(target=kill_server)
    killer.start()
    r = run_spec(
        pipeline(f"- {{id: k, uses: playbook/call, with: {{action: pid_sleep, arg: '{pid_file}'}}}}")
    )
    killer.join()
    assert r.status == "failed"
    assert "fork server died" in (r.steps["k"].error or "")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the step outlived its fork server"
        time.sleep(0.05)


def test_short_secrets_are_not_redacted_everywhere() -> None:
    from mlops_nocode.runtime.secrets import redact

    assert redact("expected x", {"S": "x"}) == "expected x"
    assert redact("token abcd!", {"S": "abcd"}) == "token ***!"


def test_command_outputs_that_are_not_what_they_claim(tmp_path: Path) -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: mkdir-out, version: 1.0.0}
spec:
  runtime: command
  command: {argv: [mkdir, -p, "${{ outputs.o }}/sub"], outputs: {o: o.json}}
  outputs: {o: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: bad-text, version: 1.0.0}
spec:
  runtime: command
  command: {argv: [PYTHON, -c, "import sys; open(sys.argv[1], 'wb').write(b'\\\\xff')", "${{ outputs.t }}"],
            outputs: {t: t.txt}}
  outputs: {t: {type: text}}
""".replace("PYTHON", sys.executable)
    r = run_spec(
        spec
        + "---"
        + pipeline("""
- {id: d, uses: playbook/mkdir-out}
- {id: t, uses: playbook/bad-text}
- {id: ok, uses: playbook/add}
""")
    )
    assert r.status == "failed"
    assert "'o.json' is a folder, where a regular file was expected" in (r.steps["d"].error or "")
    assert "UTF-8" in (r.steps["t"].error or "")
    assert r.steps["ok"].status == "succeeded"
