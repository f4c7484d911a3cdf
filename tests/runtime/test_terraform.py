"""Terraform steps through a real Runner and the real `terraform` binary, with modules built only on the
built-in `terraform_data` resource (no provider to download): outputs, re-apply, destroy, secrets, hostile
values, failures, timeouts (no orphan), a git:: source and the lock between two runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.catalogue.folder import load_folder
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from tests.conftest import processes_with, wait_for_text

MODULE = """
variable "name" { type = string }
variable "size" {
  type    = number
  default = 1
}
variable "token" {
  type      = string
  default   = ""
  sensitive = true
}
resource "terraform_data" "box" {
  input = { name = var.name, size = var.size }
}
resource "terraform_data" "auth" {
  triggers_replace = [sha256(var.token)]
}
output "box" {
  value = { id = terraform_data.box.id, name = var.name, size = var.size }
}
output "name" { value = var.name }
output "secret_len" { value = nonsensitive(length(var.token)) }
"""

PLAYBOOK = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: tf, version: 1.0.0}}
spec:
  runtime: terraform
  terraform:
    module: {module}
    variables: {variables}
    ephemeral: {ephemeral}
    state: {state}
  outputs: {{box: {{type: infra}}, name: {{type: text}}, secret_len: {{type: json}}}}
  secrets: [{secrets}]
  parameters:
    type: object
    properties:
      name: {{type: string, default: demo}}
      size: {{type: integer, default: 1}}
"""


def catalogue(
    tmp_path: Path,
    module: str = MODULE,
    *,
    variables: str = '{name: "${{ params.name }}", size: "${{ params.size }}"}',
    ephemeral: bool = False,
    state: str = "run",
    secrets: str = "",
    source: str = "mod",
    steps: str = "- {id: infra, uses: playbook/tf, with: {name: demo}}",
) -> Path:
    folder = tmp_path / "cat"
    (folder / "mod").mkdir(parents=True, exist_ok=True)
    (folder / "mod" / "main.tf").write_text(textwrap.dedent(module))
    (folder / "tf.yaml").write_text(
        PLAYBOOK.format(
            module=source,
            variables=variables,
            ephemeral=str(ephemeral).lower(),
            state=state,
            secrets=secrets,
        )
    )
    pipeline = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    (folder / "pipe.yaml").write_text(pipeline)
    return folder


def run(folder: Path, home: Path, **kw: Any) -> tuple[RunResult, list[Event]]:
    plan = compile_plan("pipeline/t", Index(load_folder([folder])))
    events: list[Event] = []
    return Runner(plan, home=home, sink=events.append, **kw).run(), events


def log_of(r: RunResult, step: str = "infra") -> str:
    return "\n".join(p.read_text() for p in sorted((r.run_dir / "steps").glob(f"{step}@*.log")))


def state_resources(workdir: Path) -> list[str]:
    state = json.loads((workdir / "terraform.tfstate").read_text())
    return [r["type"] + "." + r["name"] for r in state.get("resources", [])]


def test_apply_gives_typed_outputs_and_shows_the_plan_first(tmp_path: Path, home: Path) -> None:
    hostile = 'q"uote ${var.x} %{ if true }x%{ endif } back\\slash\nnew line $${y}'
    folder = catalogue(
        tmp_path, steps=f"- {{id: infra, uses: playbook/tf, with: {{name: {json.dumps(hostile)}}}}}"
    )
    r, events = run(folder, home)
    assert r.status == "succeeded", r.summary()
    out = r.steps["infra"].outputs
    assert out["name"]["value"] == hostile  # verbatim: JSON variables, never HCL text
    assert out["box"]["value"]["name"] == hostile and out["box"]["value"]["size"] == 1
    assert out["secret_len"]["value"] == 0
    log = log_of(r)
    assert log.index("Plan: 2 to add") < log.index("== terraform apply") < log.index("Apply complete")
    workdir = r.run_dir / "terraform" / "infra"
    assert (workdir / "mlops.auto.tfvars.json").stat().st_mode & 0o777 == 0o600
    assert json.loads((workdir / "mlops.auto.tfvars.json").read_text())["name"] == hostile
    assert sorted(state_resources(workdir)) == ["terraform_data.auth", "terraform_data.box"]
    assert not list(workdir.glob(".mlops-tfplan-*")), "the saved plan (it holds variable values) is deleted"
    assert any(e.type == "log" and "Apply complete" in e.data["line"] for e in events)


def test_a_secret_reaches_terraform_only_as_tf_var(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    monkeypatch.setenv("TF_TOKEN_X", secret)
    folder = catalogue(
        tmp_path,
        variables='{name: demo, token: "${{ secrets.TF_TOKEN_X }}"}',
        secrets="TF_TOKEN_X",
    )
    r, events = run(folder, home)
    assert r.status == "succeeded", r.summary()
    assert r.steps["infra"].outputs["secret_len"]["value"] == len(secret)  # terraform got it
    for path in [*home.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in json.dumps([e.data for e in events])
    workdir = r.run_dir / "terraform" / "infra"
    assert "token" not in json.loads((workdir / "mlops.auto.tfvars.json").read_text())


def test_shared_state_is_reapplied_without_changes(tmp_path: Path, home: Path) -> None:
    folder = catalogue(tmp_path, state="demo-ws")
    first, _ = run(folder, home)
    second, _ = run(folder, home)
    assert first.status == second.status == "succeeded", second.summary()
    box = first.steps["infra"].outputs["box"]["value"]
    assert second.steps["infra"].outputs["box"]["value"] == box  # the same resource, not a new one
    assert "No changes." in log_of(second)
    shared = home / "terraform" / "shared" / "demo-ws"
    assert sorted(state_resources(shared)) == ["terraform_data.auth", "terraform_data.box"]
    assert (shared / "main.tf").is_file()  # what `mlops infra destroy --state` needs


def test_ephemeral_infrastructure_is_destroyed_even_when_the_run_fails(tmp_path: Path, home: Path) -> None:
    folder = catalogue(
        tmp_path,
        ephemeral=True,
        steps="""
- {id: infra, uses: playbook/tf, with: {name: demo}}
- {id: boom, uses: playbook/fail, inputs: {x: infra.name}}
""",
    )
    (folder / "fail.yaml").write_text(
        "apiVersion: mlops-nocode/v1\nkind: Playbook\nmetadata: {name: fail, version: 1.0.0}\n"
        "spec: {runtime: command, inputs: {x: {type: text}}, command: {argv: [sh, -c, 'exit 3']}}\n"
    )
    r, _ = run(folder, home)
    assert r.status == "failed" and r.steps["infra"].status == "succeeded", r.summary()
    workdir = r.run_dir / "terraform" / "infra"
    assert state_resources(workdir) == []
    assert "== destroyed" in log_of(r)


def test_missing_binary_is_a_clear_failure(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERRAFORM_BINARY", str(tmp_path / "no-such-terraform"))
    r, _ = run(catalogue(tmp_path), home)
    assert r.status == "failed"
    error = r.steps["infra"].error or ""
    assert "TERRAFORM_BINARY=" in error and "install terraform" in error, error


def test_a_failing_apply_undoes_what_it_created(tmp_path: Path, home: Path) -> None:
    module = (
        MODULE
        + """
resource "terraform_data" "checked" {
  input = var.name
  lifecycle {
    postcondition {
      condition     = self.id == "never"
      error_message = "the checked resource is not what was asked"
    }
  }
}
"""
    )
    r, _ = run(catalogue(tmp_path, module), home)
    assert r.status == "failed"
    error = r.steps["infra"].error or ""
    assert "terraform apply failed" in error and "not what was asked" in error, error
    assert state_resources(r.run_dir / "terraform" / "infra") == []


HANGS = (
    MODULE
    + """
resource "terraform_data" "hangs" {
  provisioner "local-exec" {
    command = "echo $$ > {pid}; exec sleep 3600"
  }
}
"""
)


def test_a_timeout_kills_terraform_and_what_it_started(tmp_path: Path, home: Path) -> None:
    pid_file = tmp_path / "provisioner.pid"
    folder = catalogue(tmp_path, HANGS.replace("{pid}", str(pid_file)))
    text = (folder / "tf.yaml").read_text().replace("  outputs:", "  timeout: 20s\n  outputs:", 1)
    (folder / "tf.yaml").write_text(text)
    r, _ = run(folder, home)
    assert r.status == "failed" and "timed out" in (r.steps["infra"].error or ""), r.summary()
    pid = int(wait_for_text(pid_file))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])
    ]
    assert not [p for p in leftovers if p.pid != os.getpid()], leftovers


def test_bad_templating_is_a_located_error_at_validate_time(tmp_path: Path, home: Path) -> None:
    folder = catalogue(
        tmp_path,
        variables='{name: "x-${{ secrets.T }}", size: "${{ params.nope }}"}',
        secrets="T",
    )
    from mlops_nocode.spec import SpecError

    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/t", Index(load_folder([folder])))
    text = "\n".join(f"{p.where}: {p.what} -> {p.fix}" for p in e.value.problems)
    assert "spec.terraform.variables.name" in text and "TF_VAR_name" in text, text
    assert "spec.terraform.variables.size" in text and "params.nope" in text, text


def test_a_module_outside_the_playbook_folder_is_refused(tmp_path: Path, home: Path) -> None:
    from mlops_nocode.spec import SpecError

    for source, expected in (("../elsewhere", "relative folder"), ("missing", "does not exist")):
        folder = catalogue(tmp_path, source=source)
        with pytest.raises(SpecError) as e:
            compile_plan("pipeline/t", Index(load_folder([folder])))
        assert expected in str([p.what for p in e.value.problems]), e.value.problems


def test_a_git_module_is_cloned_at_its_ref(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    (repo / "infra" / "main.tf").write_text(
        MODULE.replace("value = var.name }", 'value = "v1-${var.name}" }')
    )
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "v1"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    (repo / "infra" / "main.tf").write_text(
        MODULE.replace("value = var.name }", 'value = "v2-${var.name}" }')
    )
    subprocess.run([*git, "commit", "-qam", "v2"], check=True)
    folder = catalogue(tmp_path, source=f"git::file://{repo}//infra?ref=v1")
    refused, _ = run(folder, home)
    assert "TERRAFORM_GIT_FILE_URLS" in (refused.steps["infra"].error or ""), refused.summary()
    monkeypatch.setenv("TERRAFORM_GIT_FILE_URLS", "true")
    r, _ = run(folder, home)
    assert r.status == "succeeded", r.summary()
    assert r.steps["infra"].outputs["name"]["value"] == "v1-demo"


def test_two_runs_never_apply_one_state_at_once(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, started = tmp_path / "gate", tmp_path / "started"
    module = (
        MODULE
        + f"""
resource "terraform_data" "slow" {{
  provisioner "local-exec" {{
    command = "touch {started}; while [ ! -f {gate} ]; do sleep 0.1; done"
  }}
}}
"""
    )
    folder = catalogue(tmp_path, module, state="locked")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlops")),
            "run",
            str(folder / "pipe.yaml"),
            "-c",
            str(folder),
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never reached its apply"
            time.sleep(0.1)
        monkeypatch.setenv("TERRAFORM_LOCK_TIMEOUT", "1")
        second, _ = run(folder, home)
        assert second.status == "failed"
        assert "another terraform run holds the lock" in (second.steps["infra"].error or ""), second.summary()
    finally:
        gate.touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)["status"] == "succeeded"


def test_mlops_run_then_infra_destroy(
    tmp_path: Path, home: Path, mlops: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "cli-" + uuid.uuid4().hex
    folder = catalogue(
        tmp_path, variables='{name: demo, token: "${{ secrets.TF_CLI_TOKEN }}"}', secrets="TF_CLI_TOKEN"
    )
    done = mlops("run", str(folder / "pipe.yaml"), "-c", str(folder), "--json", env={"TF_CLI_TOKEN": secret})
    assert done.code == 0, done
    summary = done.json()
    assert summary["status"] == "succeeded" and secret not in done.stdout + done.stderr
    workdir = Path(summary["run_dir"]) / "terraform" / "infra"
    assert len(state_resources(workdir)) == 2
    missing = mlops("infra", "destroy", summary["run_id"])
    assert missing.code == 1 and "export TF_CLI_TOKEN=" in " ".join(missing.stderr.split()), missing
    assert mlops("infra", "destroy", "../escape").code == 1
    gone = mlops("infra", "destroy", summary["run_id"], "infra", env={"TF_CLI_TOKEN": secret})
    assert gone.code == 0, gone
    assert state_resources(workdir) == []
    assert secret not in (workdir / "destroy.log").read_text()


def test_the_builtin_terraform_playbook_runs(tmp_path: Path, home: Path, mlops: Any) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata: {name: ws, version: 1.0.0}\n"
        "spec:\n  steps:\n    - {id: ws, uses: playbook/terraform-workspace, with: {name: team-a, size: 3}}\n"
        "  outputs: {workspace: ws.workspace}\n"
    )
    from mlops_nocode.catalogue import builtin_path

    # its module ships beside its spec file: the catalogue is named as a folder (Git catalogues do not
    # carry a playbook's files yet)
    done = mlops("run", str(spec), "-c", str(builtin_path() / "playbooks"), "--json")
    assert done.code == 0, done
    ws = done.json()["outputs"]["workspace"]
    assert ws["name"] == "team-a" and ws["size"] == 3 and ws["hosts"] == ["localhost"]


def test_cancel_kills_terraform_and_destroys_ephemeral_infrastructure(tmp_path: Path, home: Path) -> None:
    marker = f"mlops-tf-cancel-{uuid.uuid4().hex}"
    module = (
        MODULE
        + f"""
resource "terraform_data" "hangs" {{
  depends_on = [terraform_data.box]
  provisioner "local-exec" {{
    interpreter = ["bash", "-c"]
    command     = "exec -a {marker} sleep 300"
  }}
}}
"""
    )
    folder = catalogue(tmp_path, module, ephemeral=True)
    plan = compile_plan("pipeline/t", Index(load_folder([folder])))
    runner = Runner(plan, home=home)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    deadline = time.monotonic() + 120
    while not processes_with(marker):
        assert time.monotonic() < deadline and t.is_alive(), "the provisioner never started"
        time.sleep(0.05)
    runner.cancel()
    t.join(120)
    assert result and result[0].status == "cancelled", result
    assert not [p for p in processes_with(marker) if p.status() != psutil.STATUS_ZOMBIE]
    workdir = result[0].run_dir / "terraform" / "infra"
    assert state_resources(workdir) == []  # what the cancelled apply created was destroyed at the run's end


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("../outside", "relative folder"),
        ("/etc", "relative folder"),
        ("git::ext::sh -c touch${IFS}/tmp/x", "not a git source"),
        ("git::https://example.com/r.git?ref=--upload-pack=touch", "not a branch, tag or commit"),
        ("git::https://example.com/r.git//../../etc?ref=v1", "relative folder"),
        ("https://example.com/r.git", "git sources only"),
        ("mod/${{ params.name }}", "relative folder"),
    ],
)
def test_hostile_module_sources_are_refused_by_the_model(module: str, expected: str) -> None:
    from pydantic import ValidationError

    from mlops_nocode.spec.sections import TerraformRuntime

    with pytest.raises(ValidationError, match=re.escape(expected)):
        TerraformRuntime(module=module)


def test_an_infra_output_feeds_the_next_terraform_step_as_an_object(tmp_path: Path, home: Path) -> None:
    folder = catalogue(
        tmp_path,
        steps="""
- {id: infra, uses: playbook/tf, with: {name: first, size: 4}}
- {id: next, uses: playbook/tf-next, inputs: {upstream: infra.box}}
""",
    )
    (folder / "next").mkdir()
    (folder / "next" / "main.tf").write_text(
        'variable "upstream" { type = any }\n'
        'variable "label" { type = string }\n'
        'output "summary" { value = "${var.label}:${var.upstream.name}x${var.upstream.size}" }\n'
    )
    (folder / "tf-next.yaml").write_text(
        "apiVersion: mlops-nocode/v1\nkind: Playbook\nmetadata: {name: tf-next, version: 1.0.0}\n"
        "spec:\n  runtime: terraform\n"
        "  terraform: {module: next, variables: {upstream: '${{ inputs.upstream }}',"
        " label: 'got ${{ inputs.upstream }}'}}\n"
        "  inputs: {upstream: {type: infra}}\n  outputs: {summary: {type: text}}\n"
    )
    r, _ = run(folder, home)
    assert r.status == "succeeded", r.summary()
    summary = r.steps["next"].outputs["summary"]["value"]
    assert summary.endswith(":firstx4") and summary.startswith('got {"id": '), summary


def test_a_secret_passed_as_a_parameter_also_goes_only_through_tf_var(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "p4ram-" + uuid.uuid4().hex
    monkeypatch.setenv("TF_PARAM_SECRET", secret)
    folder = catalogue(
        tmp_path,
        variables='{name: demo, token: "${{ params.name }}"}',
        steps='- {id: infra, uses: playbook/tf, with: {name: "${{ secrets.TF_PARAM_SECRET }}"}}',
    )
    r, events = run(folder, home)
    assert secret not in json.dumps([e.data for e in events])
    assert r.status == "succeeded", r.summary()
    assert r.steps["infra"].outputs["secret_len"]["value"] == len(secret)
    workdir = r.run_dir / "terraform" / "infra"
    assert "token" not in json.loads((workdir / "mlops.auto.tfvars.json").read_text())
    for path in home.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret.encode() not in path.read_bytes(), path
