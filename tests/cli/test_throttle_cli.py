"""Tests for `mlops throttle ...` (the Typer sub-app), through CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mlops_nocode.cli import throttle
from tests.cpuload import burning

IDLE_ENV = {"CPU_THRESHOLD": "100.1", "LOAD_AVG_THRESHOLD": "1000", "CHECK_INTERVAL": "0.05"}
ENV_NAMES = [
    "CPU_THRESHOLD",
    "LOAD_AVG_THRESHOLD",
    "CHECK_INTERVAL",
    "MAX_WAIT_TIME",
    "THROTTLE_DISABLE",
    "LOG_LEVEL",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def root() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(throttle.app, name="throttle")
    return app


def flat(text: str) -> str:
    return " ".join(text.split())


def test_status_json(root: typer.Typer) -> None:
    result = CliRunner().invoke(root, ["throttle", "status", "--json"], env=IDLE_ENV)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {
        "cpu",
        "load1",
        "load5",
        "load15",
        "cpu_threshold",
        "load_avg_threshold",
        "would_wait",
        "reason",
        "disabled",
    }
    assert data["cpu_threshold"] == 100.1 and data["load_avg_threshold"] == 1000.0
    assert data["would_wait"] is False and data["disabled"] is False
    assert 0.0 <= data["cpu"] <= 100.0


def test_status_table_says_when_it_would_wait(root: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 8.0, 7.0))
    result = CliRunner().invoke(root, ["throttle", "status"], env={**IDLE_ENV, "LOAD_AVG_THRESHOLD": "6"})
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "CPU (system-wide)" in out and "load average 5 min" in out and "8.00" in out
    assert "would wait: yes" in out and "LOAD_AVG_THRESHOLD 6" in out


def test_bad_setting_is_a_clear_error(root: typer.Typer) -> None:
    result = CliRunner().invoke(root, ["throttle", "status"], env={"CPU_THRESHOLD": "abc"})
    assert result.exit_code == 2
    assert "CPU_THRESHOLD='abc'" in flat(result.stderr)


def test_wait_passes_exit_code_through(root: typer.Typer) -> None:
    cmd = ["throttle", "wait", "--", sys.executable, "-c", "import sys; sys.exit(3)"]
    result = CliRunner().invoke(root, cmd, env=IDLE_ENV)
    assert result.exit_code == 3, result.output


def test_wait_without_command_just_waits(root: typer.Typer) -> None:
    result = CliRunner().invoke(root, ["throttle", "wait"], env=IDLE_ENV)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_wait_command_not_found_exits_127(root: typer.Typer) -> None:
    result = CliRunner().invoke(root, ["throttle", "wait", "--", "no-such-command-xyz", "-v"], env=IDLE_ENV)
    assert result.exit_code == 127
    assert "command not found: no-such-command-xyz" in flat(result.stderr)


def test_wait_reports_throttling_on_stderr(root: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 50.0, 50.0))
    env = {**IDLE_ENV, "LOAD_AVG_THRESHOLD": "6", "MAX_WAIT_TIME": "0.3"}
    cmd = ["throttle", "wait", "--", sys.executable, "-c", "pass"]
    result = CliRunner().invoke(root, cmd, env=env)
    assert result.exit_code == 0, result.output
    err = flat(result.stderr)
    assert "still busy after 0.3" in err and "MAX_WAIT_TIME (0.3s) reached, proceeding anyway" in err
    assert "load average (5 min) 50.00 > LOAD_AVG_THRESHOLD 6" in err


@pytest.mark.parametrize(
    ("level", "shown", "hidden"),
    [
        ("DEBUG", ["reading: CPU", "throttling busy-test", "MAX_WAIT_TIME"], []),
        ("INFO", ["throttling busy-test", "MAX_WAIT_TIME"], ["reading: CPU"]),
        ("WARNING", ["MAX_WAIT_TIME"], ["throttling busy-test", "reading: CPU"]),
        ("ERROR", [], ["MAX_WAIT_TIME", "throttling", "reading: CPU"]),
    ],
)
def test_log_level_decides_what_the_throttler_logs(level: str, shown: list[str], hidden: list[str]) -> None:
    """`mlops throttle wait` on a really busy machine, as a real process: LOG_LEVEL filters its log lines."""
    env = {
        **os.environ,
        "CPU_THRESHOLD": "50",
        "LOAD_AVG_THRESHOLD": "1000",
        "MAX_WAIT_TIME": "0.3",
        "LOG_LEVEL": level,
        "COLUMNS": "200",
    }
    argv = [sys.executable, "-m", "mlops_nocode.cli.throttle", "wait", "--label", "busy-test"]
    with burning():
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    err = flat(proc.stderr)
    for text in shown:
        assert text in err, (level, text, err)
    for text in hidden:
        assert text not in err, (level, text, err)


def test_wait_command_that_is_not_a_program_exits_126(root: typer.Typer, tmp_path: Path) -> None:
    """An executable file that is no program (exec format error), or a folder: exit 126, no traceback."""
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01\x02 not a program\n")
    junk.chmod(0o755)
    for cmd in (str(junk), str(tmp_path)):
        result = CliRunner().invoke(root, ["throttle", "wait", "--", cmd], env=IDLE_ENV)
        assert result.exit_code == 126, (cmd, result.output, result.exception)
        assert f"cannot run {cmd}" in flat(result.stderr)
        assert "Traceback" not in result.output


def test_empty_throttle_disable_means_unset(root: typer.Typer) -> None:
    result = CliRunner().invoke(
        root, ["throttle", "status", "--json"], env={**IDLE_ENV, "THROTTLE_DISABLE": ""}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["disabled"] is False


def test_module_runs_as_real_subprocess() -> None:
    env = {**os.environ, **IDLE_ENV}
    code = "import sys; print('child ran', sys.argv[1:]); sys.exit(3)"
    argv = [sys.executable, "-m", "mlops_nocode.cli.throttle", "wait", "--", sys.executable, "-c", code, "-x"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "child ran ['-x']" in proc.stdout

    argv = [sys.executable, "-m", "mlops_nocode.cli.throttle", "wait", "--", "no-such-command-xyz"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 127
    assert "no-such-command-xyz" in proc.stderr
