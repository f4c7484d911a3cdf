"""Shared fixtures: an isolated MLOPS_HOME, a spec writer, and the `mlops` CLI run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MLOPS_HOME beside (not inside) tmp_path; steps may write in tmp_path, where tests put the files they
    watch (STEP_SANDBOX_WRITE), and never see MLOPS_HOME beyond their own folders."""
    h = tmp_path.with_name(tmp_path.name + "-mlops-home")
    monkeypatch.setenv("MLOPS_HOME", str(h))
    monkeypatch.setenv("THROTTLE_DISABLE", "true")
    monkeypatch.setenv("STEP_SANDBOX_WRITE", str(tmp_path))
    return h


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "spec.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text), encoding="utf-8")
        return p

    return write


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


@pytest.fixture
def mlops(home: Path) -> Callable[..., CliResult]:
    """Run `mlops ARGS` in a real process (env inherits MLOPS_HOME; fixture steps importable)."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        cwd: Path | None = None,
        module: str = "mlops_nocode.cli.main",  # `providers`: with test providers (fixtures/providers.py)
    ) -> CliResult:
        full_env = {**os.environ, "PYTHONPATH": str(FIXTURES), "COLUMNS": "200", **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=cwd,
        )
        return CliResult(proc)

    return run


ADD_PLAYBOOK = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: add, version: VERSION}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  inputs: {x: {type: json, optional: true}}
  outputs: {y: {type: json}}
  parameters:
    type: object
    additionalProperties: false
    properties: {n: {type: integer, default: 1, minimum: 0}}
"""


def call_playbook(name: str = "call", output_type: str = "json", optional: bool = True) -> str:
    """A playbook running `steps.call` (one function, many behaviours) with one output `y` of a type."""
    opt = ", optional: true" if optional else ""
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: {name}, version: 1.0.0}}
spec:
  runtime: python
  python: {{entrypoint: "steps:call"}}
  outputs: {{y: {{type: {output_type}{opt}}}}}
  parameters: {{type: object, properties: {{action: {{type: string}}, arg: {{}}}}}}
"""


PLAYBOOKS = ADD_PLAYBOOK.replace("VERSION", "1.0.0") + "---" + call_playbook()


@pytest.fixture
def playbooks(tmp_path: Path) -> Path:
    p = tmp_path / "playbooks.yaml"
    p.write_text(PLAYBOOKS, encoding="utf-8")
    return p


@pytest.fixture(autouse=True)
def fixtures_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(FIXTURES), os.environ.get("PYTHONPATH")]))
    )


METRICS_PLAYBOOK = "---" + call_playbook("call-metrics", "metrics", optional=False)

FILE_PLAYBOOK = "---" + call_playbook("call-file", "file", optional=False)


def spawn_mlops(*args: str, text: bool = True) -> subprocess.Popen[Any]:
    """Start `mlops ARGS` as a real background process (stdout/stderr piped), fixture steps importable."""
    env = {**os.environ, "PYTHONPATH": str(FIXTURES)}
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
        env=env,
    )


def wait_for_text(path: Path, timeout: float = 60) -> str:
    """The content of `path` once a step has written it (a step's pid, typically)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"nothing was written to {path} within {timeout}s"
        time.sleep(0.05)
    return path.read_text()


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    """Wait until none of `pids` runs any more (gone, or a zombie); fail naming those that still run."""
    import psutil

    def running() -> list[int]:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    deadline = time.monotonic() + timeout
    while running():
        assert time.monotonic() < deadline, f"still running: {running()}"
        time.sleep(0.05)


def processes_with(marker: str) -> list[Any]:
    """The processes whose command line holds `marker` (psutil.Process objects)."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            continue
    return found


def none_left(marker: str, timeout: float = 20.0) -> bool:
    """Whether, within `timeout`, no process's command line holds `marker` any more."""
    deadline = time.monotonic() + timeout
    while processes_with(marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def fake_llm() -> Any:
    """A scripted OpenAI-compatible backend on loopback standing in for a model (tests/fakellm.py)."""
    from tests.fakellm import FakeLLM

    backend = FakeLLM()
    yield backend
    backend.stop()


# The slowest test files (seconds of one test process each, measured by `--durations`), started first:
# `-n 3 --dist loadfile` hands files out in collection order, so a long file collected last would run
# alone at the end while the other processes sit idle. Order only: every test still runs.
SLOW_FIRST = (
    "tests/ray/test_ray_target.py",
    "tests/ray/test_ray_exec.py",
    "tests/api/test_gateway_reports.py",
    "tests/cli/test_examples.py",
    "tests/api/test_gateway_keys.py",
    "tests/cli/test_rag_example.py",
    "tests/api/test_gateway_schemathesis.py",
    "tests/cli/test_client_cli.py",
    "tests/monitoring/test_stack_e2e.py",
    "tests/catalogue/test_catalogue_cli.py",
    "tests/catalogue/test_catalogue_cli_rules.py",
    "tests/cli/test_spec_defects.py",
    "tests/integrations/test_llm_proxy.py",
    "tests/api/test_gateway_redaction.py",
    "tests/cli/test_llm_example.py",
    "tests/cli/test_assist_cli.py",
    "tests/api/test_gateway_recovery.py",
    "tests/cli/test_llm_cli.py",
    "tests/bench/test_ray_overhead.py",
    "tests/runtime/test_gpu_scheduling.py",
    "tests/library/test_llm_finetune.py",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """Collect the slowest files first (SLOW_FIRST), each file's tests together and in their own order."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    first = len(rank)

    def weight(item: Any) -> int:
        return rank.get(item.nodeid.split("::", 1)[0], first)

    items[:] = sorted(items, key=weight)  # stable: the others keep pytest's order
