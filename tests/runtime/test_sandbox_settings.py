"""STEP_SANDBOX and its companions: what each value means on kernels with and without Landlock, and the
clear refusals. (A kernel without Landlock cannot be had here: `confine.landlock_abi` is replaced for the
decision tests; every test that runs steps uses the real kernel.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_nocode.runtime import confine, sandbox
from mlops_nocode.runtime.sandbox import SandboxError, base_env, resolve, server_check
from tests.conftest import CliResult


def kernel(monkeypatch: pytest.MonkeyPatch, abi: int) -> None:
    why = "" if abi else "this kernel has no Landlock (test)"
    monkeypatch.setattr(confine, "landlock_abi", lambda: (abi, why))


def test_auto_uses_landlock_where_the_kernel_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel(monkeypatch, 7)
    conf = server_check()
    assert conf.confined and conf.abi == 7 and conf.notes == ()


def test_auto_on_an_old_kernel_confines_with_what_it_has_and_says_what_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel(monkeypatch, 3)
    conf = server_check()
    assert conf.confined and "signal" in conf.notes[0]


def test_without_landlock_servers_refuse_unless_told_none_and_the_cli_runs_unconfined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel(monkeypatch, 0)
    with pytest.raises(SandboxError, match="STEP_SANDBOX=none"):
        server_check()
    assert not resolve().confined  # what `mlops run` does (with a warning)
    monkeypatch.setenv("STEP_SANDBOX", "none")
    assert not server_check().confined


def test_landlock_demands_every_feature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_SANDBOX", "landlock")
    kernel(monkeypatch, 5)
    with pytest.raises(SandboxError, match=r"ABI 6.*ABI 5"):
        resolve()
    kernel(monkeypatch, 0)
    with pytest.raises(SandboxError, match="no Landlock"):
        resolve()


def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_SANDBOX", "strict")
    with pytest.raises(SandboxError, match="STEP_SANDBOX"):
        resolve()
    monkeypatch.setenv("STEP_SANDBOX", "auto")
    monkeypatch.setenv("STEP_ENV_PASSTHROUGH", "AWS_REGION,DATABASE_URL")
    with pytest.raises(SandboxError, match=r"STEP_ENV_PASSTHROUGH.*DATABASE_URL"):
        resolve()


def test_the_environment_is_an_allow_list() -> None:
    env = base_env(
        {"PATH": "/bin", "LC_ALL": "C", "DATABASE_URL": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "z"},
        passthrough={"AWS_REGION", "DATABASE_URL"},
    )
    assert env == {"PATH": "/bin", "LC_ALL": "C", "AWS_REGION": "z"}


def test_grants_never_cover_a_protected_path(tmp_path: Path) -> None:
    (tmp_path / "home" / "runs").mkdir(parents=True)
    (tmp_path / "code").mkdir()
    (tmp_path / "notes.txt").write_text("")
    grants = sandbox._outside(str(tmp_path), "ro", [str(tmp_path / "home")])
    assert sorted(grants) == [(str(tmp_path / "code"), "ro"), (str(tmp_path / "notes.txt"), "ro")]
    assert sandbox._outside(str(tmp_path / "home" / "runs"), "ro", [str(tmp_path / "home")]) == []


def test_etc_secrets_are_left_out_and_steps_need_few_rules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    box = sandbox.for_run(resolve(), home, home / "runs" / "r", {"PATH": "/usr/bin"})
    software = dict(box.software)
    assert "/etc/shadow" not in software and "/etc" not in software and "/etc/passwd" in software
    assert "/usr" in software and "/usr/bin" not in software  # nested grants merged
    assert not any(p == str(home) or p.startswith(f"{home}/") for p, _ in box.shared)
    assert len(box.shared) < 60 < len(box.software)  # the fork server's layer keeps /etc's details


def test_a_bad_setting_stops_the_gateway_with_a_located_message(
    mlops: Callable[..., CliResult],
) -> None:
    r = mlops("up", "--port", "0", env={"STEP_SANDBOX": "strict"})
    assert r.code == 2 and "STEP_SANDBOX" in r.stderr and "Traceback" not in r.stderr
    r = mlops("run", "pipeline/iris-classifier", env={"STEP_SANDBOX": "strict"})
    assert r.code == 2 and "STEP_SANDBOX" in r.stderr and "Traceback" not in r.stderr
