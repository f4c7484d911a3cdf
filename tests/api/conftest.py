"""A real gateway: `mlops up` in a subprocess on a free port, driven with httpx, on SQLite and on a
throwaway PostgreSQL cluster (every test that takes `new_db` or `server` runs on both)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.pgcluster import Cluster, PostgresUnavailable

TERMINAL = {"succeeded", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `mlops up` process on MLOPS_HOME=home; restartable on the same home and port."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.port = free_port()
        self.env = {**os.environ, "MLOPS_HOME": str(home), "THROTTLE_DISABLE": "true", **env}
        self.env.pop("SECRET_KEY", None)
        if "DATABASE_URL" not in env:
            self.env.pop("DATABASE_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home.parent / f"{home.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlops_nocode.cli.main", "up", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"gateway did not start:\n{self.log.read_text()}")

    @property
    def admin_key(self) -> str:
        return str(json.loads((self.home / "credentials.json").read_text())["key"])

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything the server left in its session


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole session (fails, never skips, when it cannot start)."""
    try:
        cluster = Cluster()
    except PostgresUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    try:
        cluster.start()
    except PostgresUnavailable as e:
        cluster.stop()
        pytest.fail(f"cannot start the throwaway PostgreSQL cluster: {e}", pytrace=False)
    yield cluster
    cluster.stop()


NewDb = Callable[[], dict[str, str]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def new_db(request: pytest.FixtureRequest) -> NewDb:
    """Environment for a server on a fresh database: {} (SQLite under its MLOPS_HOME), or
    {"DATABASE_URL": a new database of the session's cluster}."""
    if request.param == "sqlite":
        return dict
    cluster: Cluster = request.getfixturevalue("postgres")
    return lambda: {"DATABASE_URL": cluster.create_database()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, new_db: NewDb) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw") / "home", RUN_STALE_AFTER="3", POLL_SECONDS="0.1", **new_db())
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_key) as c:
        yield c


def wait_status(client: httpx.Client, run_id: str, timeout: float = 60.0, until: set[str] = TERMINAL) -> str:
    """Poll the blueprint's status endpoint until the run reaches one of `until`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/pipelines/{run_id}/status")
        assert r.status_code == 200, r.text
        if r.json()["status"] in until:
            return str(r.json()["status"])
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} still {r.json()} after {timeout}s")


def wait_step_started(client: httpx.Client, run_id: str, step: str, timeout: float = 60.0) -> None:
    """Poll the run's events until `step` has started."""
    deadline = time.monotonic() + timeout
    while not any(
        e["type"] == "step.started" and e["step"] == step
        for e in client.get(f"/api/v1/runs/{run_id}/events").json()
    ):
        assert time.monotonic() < deadline, f"step {step} of run {run_id} never started"
        time.sleep(0.05)


def sleeper(name: str, steps: list[tuple[str, float]], fail: str | None = None) -> list[dict[str, Any]]:
    """Inline documents: a command playbook that sleeps, and a pipeline of such steps in a chain.

    The step named `fail` exits with code 3.
    """
    code = (
        "import sys, time, json, os; print(os.environ.get('MLOPS_RUN_TOKEN', 'no run token')); "
        "time.sleep(float(sys.argv[1])); "
        "sys.exit(3) if sys.argv[3] == 'fail' else open(sys.argv[2], 'w').write(json.dumps(sys.argv[1]))"
    )
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-sleep", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {
                "argv": [
                    sys.executable,
                    "-c",
                    code,
                    "${{ params.seconds }}",
                    "${{ outputs.out }}",
                    "${{ params.mode }}",
                ],
                "outputs": {"out": "out.json"},
            },
            "outputs": {"out": {"type": "json"}},
            "parameters": {
                "type": "object",
                "properties": {"seconds": {"type": "number"}, "mode": {"type": "string", "default": "ok"}},
            },
        },
    }
    chain = []
    for i, (sid, seconds) in enumerate(steps):
        step: dict[str, Any] = {
            "id": sid,
            "uses": f"playbook/{name}-sleep",
            "with": {"seconds": seconds, "mode": "fail" if sid == fail else "ok"},
        }
        if i:
            step["depends_on"] = [steps[i - 1][0]]
        chain.append(step)
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": chain},
    }
    return [playbook, pipeline]
