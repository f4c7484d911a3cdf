"""What a step leaves in its output folder cannot hang the Runner, fill the disk or reach outside.

Real step processes (Python steps through the fork server, command steps) leave links to /dev/zero and /,
FIFOs, sockets, huge files, wide and deep folders; every run must end quickly with a located error and
the artifact store must stay small.
"""

from __future__ import annotations

import json
import os
import stat
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.conftest import FILE_PLAYBOOK, PLAYBOOKS, call_playbook

DIR_PLAYBOOK = "---" + call_playbook("call-dir", "directory", optional=False)
BOUND = 120.0  # seconds a run may take here before the test calls it hung (they take about one)


def leave_pipeline(*whats: str, playbook: str = "call-file") -> str:
    steps = "\n".join(
        f"    - {{id: s{i}, uses: playbook/{playbook}, with: {{action: leave, arg: '{w}'}}}}"
        for i, w in enumerate(whats)
    )
    return f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
{steps}
"""


def compile_spec(spec: str) -> Plan:
    docs = load_text(PLAYBOOKS + FILE_PLAYBOOK + DIR_PLAYBOOK) + load_text(textwrap.dedent(spec))
    return compile_plan("pipeline/t", Index(docs))


def run_bounded(plan: Plan, **kw: Any) -> RunResult:
    """Run `plan` in a thread; fail (instead of hanging the suite) when it does not end in BOUND s."""
    runner = Runner(plan, use_cache=False, **kw)
    box: list[RunResult] = []
    thread = threading.Thread(target=lambda: box.append(runner.run()), daemon=True)
    thread.start()
    thread.join(BOUND)
    if thread.is_alive():
        runner.cancel()
        pytest.fail(f"the run did not end within {BOUND:g}s: collecting its outputs hung")
    return box[0]


def store_bytes(home: Path) -> int:
    root = home / "artifacts"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def assert_store_clean(home: Path) -> None:
    assert store_bytes(home) < 1 << 20
    staging = home / "artifacts" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize(
    ("what", "playbook", "expected"),
    [
        ("zero_link", "call-file", "'zero_link' is a symbolic link (to '/dev/zero')"),
        ("root_link", "call-dir", "'root_link' is a symbolic link (to '/')"),
        ("fifo", "call-file", "'fifo' is a FIFO"),
        ("socket", "call-file", "'socket' is a socket"),
        ("tree:zero_link", "call-dir", "'tree/sub/zero_link' is a symbolic link (to '/dev/zero')"),
        ("tree:root_link", "call-dir", "'tree/sub/root_link' is a symbolic link (to '/')"),
        ("tree:fifo", "call-dir", "'tree/sub/fifo' is a FIFO"),
        ("tree:outside_link:/etc/hostname", "call-dir", "'tree/sub/outside_link' is a symbolic link"),
        ("via_link", "call-file", "'via_link' is a symbolic link (to '/etc')"),
    ],
)
def test_python_step_leaving_links_and_special_files_fails_fast(
    home: Path, what: str, playbook: str, expected: str
) -> None:
    r = run_bounded(compile_spec(leave_pipeline(what, playbook=playbook)))
    assert r.status == "failed"
    error = r.steps["s0"].error or ""
    assert error.startswith("output 'y' (") and expected in error, error
    assert "never followed" in error
    assert_store_clean(home)


def command_spec(script: str, out_type: str, out_path: str = "out") -> str:
    """A command playbook running `python3 -c script OUT` and a pipeline of one such step."""
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: cmd, version: 1.0.0}}
spec:
  runtime: command
  command:
    argv: [python3, -c, {json.dumps(script)}, "${{{{ outputs.y }}}}"]
    outputs: {{y: {out_path}}}
  outputs: {{y: {{type: {out_type}}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps: [{{id: c, uses: playbook/cmd}}]
"""


@pytest.mark.parametrize(
    ("script", "out_type", "expected"),
    [
        ("import os, sys; os.mkfifo(sys.argv[1])", "json", "'out' is a FIFO"),
        ("import os, sys; os.mkfifo(sys.argv[1])", "file", "'out' is a FIFO"),
        ("import os, sys; os.symlink('/dev/zero', sys.argv[1])", "text", "symbolic link (to '/dev/zero')"),
        ("import os, sys; os.symlink('/dev/zero', sys.argv[1])", "file", "symbolic link (to '/dev/zero')"),
        ("import os, sys; os.symlink('/', sys.argv[1])", "directory", "symbolic link (to '/')"),
        (
            "import os, sys; os.makedirs(sys.argv[1] + '/a'); os.mkfifo(sys.argv[1] + '/a/p')",
            "directory",
            "'out/a/p' is a FIFO",
        ),
    ],
)
def test_command_step_leaving_links_and_special_files_fails_fast(
    home: Path, script: str, out_type: str, expected: str
) -> None:
    r = run_bounded(compile_spec(command_spec(script, out_type)))
    assert r.status == "failed"
    error = r.steps["c"].error or ""
    assert error.startswith(f"output 'y' ({out_type}): ") and expected in error, error
    assert_store_clean(home)


def test_output_folder_replaced_by_a_link_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_SANDBOX", "none")  # a confined step cannot replace it: collection refuses it too
    script = "import os, shutil; d = os.getcwd(); shutil.rmtree(d); os.symlink('/', d)"
    r = run_bounded(compile_spec(command_spec(script, "directory", "etc")))
    assert r.status == "failed"
    assert "output folder" in (r.steps["c"].error or ""), r.steps["c"].error
    assert_store_clean(home)


def test_big_output_stops_at_the_limit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_OUTPUT_MAX_BYTES", "1MiB")
    r = run_bounded(compile_spec(leave_pipeline(f"big:{5 << 20}")))
    assert r.status == "failed"
    error = r.steps["s0"].error or ""
    assert "STEP_OUTPUT_MAX_BYTES (1.0MiB) reached while collecting 'big'" in error, error
    assert_store_clean(home)


def test_limits_per_step_and_per_run(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_OUTPUTS_MAX_BYTES", "3MiB")
    monkeypatch.setenv("RUN_OUTPUTS_MAX_BYTES", "7MiB")
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: two, version: 1.0.0}}
spec:
  runtime: command
  command:
    argv: [python3, -c, "import sys; [open(p, 'wb').write(b'x' * int(sys.argv[1])) for p in sys.argv[2:]]",
           "${{{{ params.n }}}}", "${{{{ outputs.a }}}}", "${{{{ outputs.b }}}}"]
    outputs: {{a: a.bin, b: b.bin}}
  outputs: {{a: {{type: file}}, b: {{type: file}}}}
  parameters: {{type: object, properties: {{n: {{type: integer}}}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: wide, uses: playbook/two, with: {{n: {2 << 20}}}}}
    - {{id: first, uses: playbook/two, with: {{n: {1 << 20}}}}}
    - {{id: second, uses: playbook/two, with: {{n: {(1 << 20) + 1}}}, depends_on: [first]}}
    - {{id: third, uses: playbook/two, with: {{n: {(1 << 20) + 2}}}, depends_on: [first]}}
"""
    r = run_bounded(compile_spec(spec), max_parallel=1)
    assert "STEP_OUTPUTS_MAX_BYTES (3.0MiB) reached while collecting 'b.bin'" in (r.steps["wide"].error or "")
    assert r.steps["first"].status == "succeeded"
    # stored: 2 MiB (wide's first output), 2 MiB (first), 2 MiB (second or third); then 7 MiB is reached
    later = [r.steps["second"], r.steps["third"]]
    assert sorted(s.status for s in later) == ["failed", "succeeded"]
    assert any("RUN_OUTPUTS_MAX_BYTES (7.0MiB) reached" in (s.error or "") for s in later)


@pytest.mark.parametrize(
    ("what", "env", "expected"),
    [
        ("many:50", {"STEP_OUTPUT_MAX_FILES": "20"}, "STEP_OUTPUT_MAX_FILES (20) reached at 'many/"),
        ("deep:40", {}, "STEP_OUTPUT_MAX_DEPTH (32) reached at 'deep/d0/d1/"),
    ],
)
def test_wide_and_deep_folders_are_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, what: str, env: dict[str, str], expected: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    r = run_bounded(compile_spec(leave_pipeline(what, playbook="call-dir")))
    assert r.status == "failed"
    assert expected in (r.steps["s0"].error or ""), r.steps["s0"].error
    assert_store_clean(home)


def test_big_values_are_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_VALUES_MAX_BYTES", "64KiB")
    script = "import sys, json; open(sys.argv[1], 'w').write(json.dumps('x' * 100000))"
    r = run_bounded(compile_spec(command_spec(script, "json")))
    assert "is larger than STEP_VALUES_MAX_BYTES (64.0KiB)" in (r.steps["c"].error or "")
    py = leave_pipeline("path:" + "y" * 100_000, playbook="call")  # a Python step's value, too
    r = run_bounded(compile_spec(py))
    error = r.steps["s0"].error or ""
    assert "its result is larger than STEP_VALUES_MAX_BYTES (64.0KiB)" in error, error


def test_cancel_interrupts_a_long_collection(home: Path) -> None:
    runner = Runner(compile_spec(leave_pipeline("many:12000", playbook="call-dir")), use_cache=False)
    box: list[RunResult] = []
    thread = threading.Thread(target=lambda: box.append(runner.run()), daemon=True)
    thread.start()
    staging = home / "artifacts" / ".staging"
    deadline = time.monotonic() + BOUND
    while not (staging.exists() and any(staging.iterdir())):  # the copy has begun
        assert thread.is_alive(), "the run ended before its outputs were copied"
        assert time.monotonic() < deadline, "the outputs were never copied"
        time.sleep(0.01)
    runner.cancel()
    thread.join(BOUND)
    assert not thread.is_alive(), "cancel did not interrupt the collection"
    assert box[0].status == "cancelled" and box[0].steps["s0"].status == "cancelled"
    assert not any(staging.iterdir())


def test_hard_link_to_a_file_outside_is_copied_and_the_original_untouched(home: Path, tmp_path: Path) -> None:
    original = tmp_path / "private.txt"
    original.write_text("owned by the worker's user")
    original.chmod(0o600)
    r = run_bounded(compile_spec(leave_pipeline(f"hardlink:{original}")))
    assert r.status == "succeeded", r.steps["s0"].error
    stored = Path(r.steps["s0"].outputs["y"]["path"])
    assert stored.read_text() == "owned by the worker's user"
    assert stat.S_IMODE(original.stat().st_mode) == 0o600 and original.stat().st_nlink == 1
    assert stored.stat().st_ino != original.stat().st_ino


def test_a_file_deep_inside_the_output_folder_is_collected(home: Path) -> None:
    r = run_bounded(compile_spec(leave_pipeline("nested")))
    assert r.status == "succeeded", r.steps["s0"].error
    assert Path(r.steps["s0"].outputs["y"]["path"]).read_text() == "deep inside"


def test_outputs_outside_the_output_folder_are_refused(home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not the step's")
    for given in (str(outside), "../../../../" + str(outside).lstrip("/")):
        r = run_bounded(compile_spec(leave_pipeline(f"path:{given}")))
        error = r.steps["s0"].error or ""
        assert r.status == "failed" and "is outside the step's output folder" in error, error
    assert_store_clean(home)


def test_an_input_given_back_is_stored_once(home: Path) -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: passthrough, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:passthrough"}
  inputs: {x: {type: file}}
  outputs: {y: {type: file}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: a, uses: playbook/call-file, with: {action: write_same, arg: a.txt}}
    - {id: b, uses: playbook/passthrough, inputs: {x: a.y}}
"""
    r = run_bounded(compile_spec(spec))
    assert r.status == "succeeded", r.summary()
    assert r.steps["b"].outputs["y"] == r.steps["a"].outputs["y"] | {"type": "file"}


def test_mlops_run_obeys_the_limits(mlops: Any, write_spec: Any) -> None:
    spec = write_spec(PLAYBOOKS + FILE_PLAYBOOK + "---" + leave_pipeline(f"big:{3 << 20}"))
    r = mlops("run", str(spec), "--json", env={"STEP_OUTPUT_MAX_BYTES": "2MiB"}, timeout=BOUND)
    assert r.code == 1, r
    assert "STEP_OUTPUT_MAX_BYTES (2.0MiB) reached" in r.json()["steps"]["s0"]["error"]
    bad = mlops("run", str(spec), env={"STEP_OUTPUT_MAX_BYTES": "lots"}, timeout=BOUND)
    assert bad.code == 2 and "STEP_OUTPUT_MAX_BYTES" in bad.stderr, bad
    assert os.environ.get("STEP_OUTPUT_MAX_BYTES") is None
