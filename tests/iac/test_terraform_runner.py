"""The Terraform runner's whole lifecycle, for real, on provider-free root modules (`terraform_data`)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.iac.terraform import TerraformError, TerraformRunner
from tests.iac.support import needs_terraform, wait_for

pytestmark = needs_terraform

SECRET = "tf-secret-Zq8v!K2$${x}"  # a hostile value: quotes and template marks must not matter


def write_module(workdir: Path, module: dict[str, Any]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf.json").write_text(json.dumps(module), encoding="utf-8")
    return workdir


def local_exec(command: str, **environment: str) -> list[dict[str, Any]]:
    return [{"local-exec": {"command": command, "environment": environment}}]


def two_resources(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resource": {
            "terraform_data": {"first": {"input": "one"}, "second": {"input": "two", **(extra or {})}}
        },
        "output": {"first": {"value": "${terraform_data.first.output}"}},
    }


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def runner(tmp_path: Path, lines: list[str]) -> Callable[..., TerraformRunner]:
    def make(module: dict[str, Any], **kw: Any) -> TerraformRunner:
        workdir = write_module(tmp_path / "deployment", module)
        return TerraformRunner(workdir, on_line=lines.append, **kw)

    return make


def test_init_plan_apply_state_outputs_destroy_twice(runner: Callable[..., TerraformRunner]) -> None:
    tf = runner(two_resources())
    tf.init()
    plan = tf.plan()
    planned = sorted(c["address"] for c in plan["resource_changes"])
    assert planned == ["terraform_data.first", "terraform_data.second"]
    assert all(c["change"]["actions"] == ["create"] for c in plan["resource_changes"])
    assert tf.resources() == []  # planning creates nothing

    assert tf.apply() == {"first": "one"}
    assert tf.outputs() == {"first": "one"}
    assert [r["address"] for r in tf.resources()] == ["terraform_data.first", "terraform_data.second"]
    assert tf.resources()[0] == {"type": "terraform_data", "name": "first", "address": "terraform_data.first"}
    assert stat.S_IMODE(tf.workdir.stat().st_mode) == 0o700

    tf.destroy()
    assert tf.resources() == []
    tf.destroy()  # twice: nothing left, no error
    assert tf.resources() == []


def test_destroy_of_a_deployment_never_applied_does_nothing(tmp_path: Path) -> None:
    TerraformRunner(tmp_path / "never-rendered").destroy()
    tf = TerraformRunner(write_module(tmp_path / "rendered", two_resources()))
    tf.destroy()
    assert tf.resources() == []


def test_failed_apply_is_followed_by_a_destroy_of_what_was_created(
    runner: Callable[..., TerraformRunner],
) -> None:
    module = two_resources(
        {"depends_on": ["terraform_data.first"], "provisioner": local_exec("echo boom-reason >&2; exit 3")}
    )
    tf = runner(module)
    with pytest.raises(TerraformError) as err:
        tf.apply()
    e = err.value
    assert "terraform apply failed" in e.what and "boom-reason" in e.what
    assert "created then destroyed: terraform_data.first, terraform_data.second" in e.what
    assert e.created == () and e.where == str(tf.workdir)
    assert tf.resources() == []  # no orphans


def test_a_failed_update_destroys_only_what_it_created(runner: Callable[..., TerraformRunner]) -> None:
    tf = runner({"resource": {"terraform_data": {"kept": {"input": "serving"}}}})
    tf.apply()
    failing = {"input": "new", "provisioner": local_exec("exit 4")}
    resources = {"kept": {"input": "serving"}, "added": failing}
    write_module(tf.workdir, {"resource": {"terraform_data": resources}})
    with pytest.raises(TerraformError) as err:
        tf.apply()
    assert "created then destroyed: terraform_data.added" in err.value.what
    assert "what existed before the apply was left as it was (1)" in err.value.what
    assert [r["address"] for r in tf.resources()] == ["terraform_data.kept"]
    assert err.value.created == ("terraform_data.kept",)
    tf.destroy()


def test_secrets_only_in_the_environment_and_masked_everywhere(
    runner: Callable[..., TerraformRunner],
    lines: list[str],
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_PLUGIN_CACHE_DIR", raising=False)
    monkeypatch.setenv("SECRET_KEY", "platform-key-never-for-terraform")
    seen = tmp_path / "seen"  # outside the working directory
    seen.mkdir()
    module = {
        "variable": {"token": {"type": "string"}},  # not even marked sensitive: we mask it ourselves
        "resource": {
            "terraform_data": {
                "probe": {
                    "input": "probe",
                    "provisioner": local_exec(
                        f"echo token=$T; tr '\\0' ' ' < /proc/$PPID/cmdline > {seen}/argv; env > {seen}/env",
                        T="${var.token}",
                    ),
                }
            }
        },
    }
    tf = runner(module, env={"TF_VAR_token": SECRET})
    plan = tf.plan()
    assert SECRET not in json.dumps(plan) and plan["variables"]["token"]["value"] == "***"
    tf.apply()
    assert "terraform_data.probe (local-exec): token=***" in lines
    assert not [line for line in lines if SECRET in line]
    argv = (seen / "argv").read_text()
    assert "apply" in argv and SECRET not in argv
    env = (seen / "env").read_text()
    assert f"TF_VAR_token={SECRET}" in env  # it reached terraform through the environment...
    assert "TF_IN_AUTOMATION=1" in env and "SECRET_KEY" not in env  # ...and the platform's keys did not
    assert f"TF_PLUGIN_CACHE_DIR={home / 'terraform' / 'plugin-cache'}" in env
    tf.destroy()
    for path in tf.workdir.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert tf._plan_dir is None  # the saved plan (which holds the value) is gone


def test_a_failure_message_masks_the_secret(runner: Callable[..., TerraformRunner]) -> None:
    module = {
        "variable": {"token": {"type": "string"}},
        "resource": {
            "terraform_data": {
                "leak": {"input": "x", "provisioner": local_exec("echo bad $T >&2; exit 1", T="${var.token}")}
            }
        },
    }
    tf = runner(module, env={"TF_VAR_token": SECRET})
    with pytest.raises(TerraformError) as err:
        tf.apply()
    assert "Output: bad" in err.value.what and "***" in err.value.what
    assert SECRET not in str(err.value.what)


def test_a_second_runner_on_the_same_workdir_waits_or_fails_on_the_lock(tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    wait = f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done"
    workdir = write_module(tmp_path / "deployment", two_resources({"provisioner": local_exec(wait)}))
    first = TerraformRunner(workdir)
    errors: list[BaseException] = []

    def apply_first() -> None:
        try:
            first.apply()
        except BaseException as exc:
            errors.append(exc)

    holder = threading.Thread(target=apply_first)
    holder.start()
    try:
        wait_for(started.exists, "the first apply to start")
        with pytest.raises(TerraformError) as err:
            TerraformRunner(workdir, lock_timeout=0.3).apply()
        assert "another terraform run holds the lock" in err.value.what
        assert f"process {os.getpid()}" in err.value.what
        assert err.value.where.endswith(".mlops-terraform.lock")

        waiting: list[dict[str, str]] = []

        def apply_patiently() -> None:
            second = TerraformRunner(workdir, lock_timeout=120)
            second.apply()
            waiting.extend(second.resources())

        patient = threading.Thread(target=apply_patiently)
        patient.start()
    finally:
        release.touch()
        holder.join()
    patient.join()
    assert errors == []
    assert [r["address"] for r in waiting] == ["terraform_data.first", "terraform_data.second"]
    first.destroy()


def test_a_command_past_its_timeout_is_stopped_and_what_it_created_destroyed(
    runner: Callable[..., TerraformRunner],
) -> None:
    hang = "while true; do sleep 0.05; done"
    tf = runner(two_resources({"depends_on": ["terraform_data.first"], "provisioner": local_exec(hang)}))
    tf.init()
    tf.timeout = 3
    with pytest.raises(TerraformError) as err:
        tf.apply()
    assert "terraform apply timed out" in err.value.what
    assert tf.resources() == []


def test_no_root_module_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TerraformError) as err:
        TerraformRunner(tmp_path / "empty").init()
    assert "main.tf.json is missing" in err.value.what and "mlops plan" in err.value.fix


def test_missing_binary_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither terraform nor tofu there
    monkeypatch.delenv("TERRAFORM_BINARY", raising=False)
    assert TerraformRunner.find_binary() is None
    tf = TerraformRunner(write_module(tmp_path / "d", two_resources()))
    with pytest.raises(TerraformError) as err:
        tf.init()
    assert err.value.what == "neither `terraform` nor `tofu` is on PATH"
    assert "install terraform >= 1.5 or OpenTofu" in err.value.fix

    monkeypatch.setenv("TERRAFORM_BINARY", str(tmp_path / "nope"))
    with pytest.raises(TerraformError) as err:
        TerraformRunner(tmp_path / "d").plan()
    assert "TERRAFORM_BINARY=" in err.value.what and err.value.where == "TERRAFORM_BINARY"


def test_terraform_binary_wins_and_tofu_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which("terraform") or shutil.which("tofu")
    assert real
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tofu").symlink_to(real)
    assert TerraformRunner.find_binary({"PATH": str(bin_dir)}) == str(bin_dir / "tofu")
    assert TerraformRunner.find_binary({"PATH": str(bin_dir), "TERRAFORM_BINARY": real}) == real
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("TERRAFORM_BINARY", raising=False)
    tf = TerraformRunner(write_module(tmp_path / "d", two_resources()))
    assert tf.apply() == {"first": "one"}
    tf.destroy()


def test_a_too_old_binary_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "terraform"
    old.write_text('#!/bin/sh\necho \'{"terraform_version": "1.3.9"}\'\n')
    old.chmod(0o755)
    with pytest.raises(TerraformError) as err:
        TerraformRunner(write_module(tmp_path / "d", two_resources()), binary=str(old)).init()
    assert "version 1.3.9, too old" in err.value.what and "terraform >= 1.5" in err.value.fix


def test_a_multi_line_secret_is_masked_line_by_line(
    runner: Callable[..., TerraformRunner], lines: list[str]
) -> None:
    kubeconfig = (
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QUJDREVGR0hJSktMTU5PUA==\n"
    )
    module = {
        "variable": {"kubeconfig": {"type": "string"}},
        "resource": {
            "terraform_data": {
                "show": {"input": "x", "provisioner": local_exec('printf "%s" "$K"', K="${var.kubeconfig}")}
            }
        },
    }
    tf = runner(module, env={"TF_VAR_kubeconfig": kubeconfig})
    tf.apply()
    printed = "\n".join(lines)
    assert "certificate-authority-data: QUJDREVGR0hJSktMTU5PUA==" not in printed
    assert "QUJDREVGR0hJSktMTU5PUA" not in printed and "***" in printed
    tf.destroy()
