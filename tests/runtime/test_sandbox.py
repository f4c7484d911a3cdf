"""The step sandbox, with real step processes: what a hostile step can read, inherit, signal and forge."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.runtime.sandbox import resolve
from mlops_nocode.spec import load_text
from tests.conftest import FIXTURES, PLAYBOOKS

pytestmark = pytest.mark.skipif(not resolve().confined, reason="this kernel has no Landlock")

PEEK_PLAYBOOKS = f"""
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: peek-python, version: 1.0.0}}
spec:
  runtime: python
  python: {{entrypoint: "steps:call"}}
  inputs: {{x: {{type: json}}}}
  outputs: {{y: {{type: json}}}}
  parameters: {{type: object, properties: {{action: {{type: string}}, arg: {{}}}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: peek-command, version: 1.0.0}}
spec:
  runtime: command
  command:
    argv: ["{sys.executable}", "{FIXTURES / "peek.py"}", "${{{{ params.arg }}}}", "${{{{ outputs.y }}}}",
           "${{{{ inputs.x }}}}"]
    outputs: {{y: y.json}}
  inputs: {{x: {{type: json}}}}
  outputs: {{y: {{type: json}}}}
  parameters: {{type: object, properties: {{action: {{type: string}}, arg: {{}}}}}}
"""

PLATFORM_ENV = {
    "DATABASE_URL": "postgresql://mlops:pg-Password-4242@db.internal/mlops",
    "SECRET_KEY": "the-gateway-signing-key-0123456789abcdef",
    "MLOPS_RUN_TOKEN": "eyJ.run.token",
    "OTHER_TOKEN": "other-steps-secret-9876",
    "MY_TOKEN": "my-own-secret-5555",
}


def run(spec: str, **kw: Any) -> RunResult:
    docs = load_text(PLAYBOOKS + PEEK_PLAYBOOKS) + load_text(textwrap.dedent(spec))
    return Runner(compile_plan("pipeline/t", Index(docs)), use_cache=False, **kw).run()


def pipeline(steps: str) -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""


def plant(home: Path) -> dict[str, str]:
    """What the platform keeps in MLOPS_HOME, and another run's files."""
    secrets = {
        "credentials.json": '{"url": "http://127.0.0.1:8000", "key": "mlk_admin_PLANTED"}',
        "secret_key": "PLANTED-secret-key-value",
        "mlops.db": "PLANTED-database-content",
        "runs/20200101-000000-abcdef/steps/x@1/out.txt": "PLANTED-other-run",
        "artifacts/00/00aa/model.bin": "PLANTED-someone-elses-artifact",
    }
    for rel, text in secrets.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(text)
    return secrets


@pytest.mark.parametrize("runtime", ["python", "command"])
def test_a_step_sees_only_its_own_files_environment_and_processes(
    runtime: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = plant(home)
    for name, value in PLATFORM_ENV.items():
        monkeypatch.setenv(name, value)
    arg = {
        "read": {
            **{rel: str(home / rel) for rel in planted},
            "sibling-output": "../a@1/private.txt",
            "shadow": "/etc/shadow",
            "os-release": "/etc/os-release",
        },
        "write": {"own-output": "own.txt", "sibling": "../a@1/evil.txt", "home": str(home / "evil.txt")},
        "env": ["DATABASE_URL", "SECRET_KEY", "MLOPS_RUN_TOKEN", "OTHER_TOKEN", "MY_TOKEN", "MLOPS_HOME"],
        "token": "${{ secrets.MY_TOKEN }}",  # makes MY_TOKEN this step's secret
    }
    r = run(
        pipeline(f"""
- {{id: a, uses: playbook/call, with: {{action: private, arg: '${{{{ secrets.OTHER_TOKEN }}}}'}}}}
- id: b
  uses: playbook/peek-{runtime}
  with: {{action: peek, arg: {json.dumps(arg)}}}
  inputs: {{x: a.y}}
""")
    )
    assert r.status == "succeeded", {k: s.error for k, s in r.steps.items()}
    seen: dict[str, str] = r.steps["b"].outputs["y"]["value"]
    assert seen["read:input"] == 'read "public"'
    assert seen["read:os-release"].startswith("read ")  # ordinary system files stay readable
    assert seen["write:own-output"] == "written"
    assert seen["env:MY_TOKEN"] == "present ***"  # its own secret: there (and masked in its output)
    leaks = {
        k: v
        for k, v in seen.items()
        if k not in ("read:input", "read:os-release", "write:own-output", "env:MY_TOKEN")
        and not v.startswith(("denied", "absent"))
    }
    assert not leaks, leaks
    assert any(k.startswith("environ:ancestor") for k in seen)  # the Runner is among them
    assert any(k.startswith("signal:ancestor") for k in seen)


def test_a_database_file_outside_mlops_home_is_protected_inside_a_granted_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "db" / "gateway.db"  # tmp_path itself is granted to steps (STEP_SANDBOX_WRITE)
    db.parent.mkdir()
    db.write_text("PLANTED-database")
    (tmp_path / "ok.txt").write_text("fine")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    arg = {"read": {"db": str(db), "ok": str(tmp_path / "ok.txt")}}
    r = run(pipeline(f"- {{id: p, uses: playbook/call, with: {{action: peek, arg: {json.dumps(arg)}}}}}"))
    seen = r.steps["p"].outputs["y"]["value"]
    assert seen["read:db"].startswith("denied") and seen["read:ok"] == "read fine"


def test_a_step_cannot_forge_fork_server_messages_about_another_job() -> None:
    """The forger sends the Runner the victim's result, a claim of its job, its exit code, then junk; and
    sends the server the victim's end. The victim finishes with its own result; the forger only ends
    itself (the server takes anything it sends there as its own end)."""
    r = run(
        pipeline("""
- {id: victim, uses: playbook/call, with: {action: victim, arg: v}}
- {id: forger, uses: playbook/call, with: {action: forge, arg: {victim: v, job: "victim#1"}}}
"""),
        max_parallel=2,
    )
    victim = r.steps["victim"]
    assert victim.status == "succeeded", victim.error
    assert victim.outputs["y"]["value"] == "genuine"
    assert r.steps["forger"].status == "failed"


def test_a_step_cannot_kill_its_fork_server(tmp_path: Path) -> None:
    r = run(pipeline(f"- {{id: k, uses: playbook/call, with: {{action: kill_server, arg: '{tmp_path}/p'}}}}"))
    assert r.status == "failed"
    assert "PermissionError" in (r.steps["k"].error or "")


def test_a_long_command_line_goes_through_a_file_unless_it_holds_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONG_TOKEN", "s" * 200)  # a secret is at most 64 KiB: the command line is longer
    long = "x" * 70_000
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: long, version: 1.0.0}}
spec:
  runtime: command
  command: {{argv: ["{sys.executable}", -c, "import sys; print(len(sys.argv[1]))", "${{{{ params.text }}}}"]}}
  parameters: {{type: object, properties: {{text: {{type: string}}}}}}
---
""" + pipeline(f"""
- {{id: plain, uses: playbook/long, with: {{text: {long}}}}}
- {{id: secret, uses: playbook/long, with: {{text: "${{{{ secrets.LONG_TOKEN }}}}{long}"}}}}
""")
    r = run(spec)
    assert r.steps["plain"].status == "succeeded", r.steps["plain"].error
    assert "70000" in (r.run_dir / "steps" / "plain@1.log").read_text()
    assert "take" in (r.steps["secret"].error or "") and "inputs" in (r.steps["secret"].error or "")
    assert "s" * 100 not in (r.run_dir / "steps" / "secret@1.payload.json").read_text()


def _tool_step(argv0: str) -> str:
    return f"""
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: tool, version: 1.0.0}}
spec:
  runtime: command
  command: {{argv: ["{argv0}", "${{{{ outputs.y }}}}"], outputs: {{y: y.json}}}}
  outputs: {{y: {{type: json}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps: [{{id: use, uses: playbook/tool}}]
"""


def test_a_version_managers_shims_on_path_can_run_its_programs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyenv, rbenv and asdf put ROOT/shims on PATH, whose scripts run programs under ROOT: a confined
    command naming `python3` through a pyenv shim failed with exit 126. Outside tmp_path (which the tests
    grant), as a real version manager's root would be."""
    root = tmp_path.with_name(tmp_path.name + "-vm")
    (root / "libexec").mkdir(parents=True)
    (root / "shims").mkdir()
    real = root / "libexec" / "real-tool"
    real.write_text('#!/bin/sh\necho \'"ran"\' > "$1"\n')
    shim = root / "shims" / "mytool"
    shim.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    real.chmod(0o755)
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{root / 'shims'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    result = Runner(compile_plan("pipeline/t", Index(load_text(_tool_step("mytool")))), use_cache=False).run()
    assert result.status == "succeeded", result.summary()
    assert result.steps["use"].outputs["y"]["value"] == "ran"


def test_a_program_the_sandbox_cannot_run_fails_saying_where_to_grant_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command whose script runs a program outside the granted folders: the step's error says why."""
    outside = tmp_path.with_name(tmp_path.name + "-bin")
    outside.mkdir()
    hidden = outside / "hidden-tool"
    hidden.write_text("#!/bin/sh\nexit 0\n")
    hidden.chmod(0o755)
    script = tmp_path / "wrapper"
    script.write_text(f'#!/bin/sh\nexec "{hidden}" "$@"\n')
    script.chmod(0o755)
    result = Runner(
        compile_plan("pipeline/t", Index(load_text(_tool_step(str(script))))), use_cache=False
    ).run()
    assert result.status == "failed"
    error = result.steps["use"].error or ""
    assert "exited with code 126" in error and "STEP_SANDBOX_READ" in error, error
