"""Runners report to the gateway over HTTP with a per-run token: the routes, a remote `mlops execute
--report-to`, and a standalone worker killed with kill -9 in the middle of a run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.runtoken import issue_run_token
from mlops_nocode.runs.service import RunService
from tests.api.conftest import NewDb, Server, sleeper, wait_status, wait_step_started


class Claimed:
    """A gateway without worker threads, and one of its runs claimed here as a remote worker would."""

    def __init__(self, server: Server, run_id: str, claim: dict[str, Any], secret: str) -> None:
        self.server, self.run_id, self.claim, self.secret = server, run_id, claim, secret

    def token(self, run_id: str | None = None, attempt: int = 1, ttl: int = 24 * 3600) -> str:
        return issue_run_token(self.secret, run_id or self.run_id, "remote:1", attempt, ttl)

    def post(self, action: str, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        url = f"{self.server.url}/api/v1/runs/{self.run_id}/{action}"
        return httpx.post(url, json=body, headers=headers, timeout=30)


def _db_url(server: Server) -> str:
    return server.env.get("DATABASE_URL") or f"sqlite:///{server.home / 'mlops.db'}"


@pytest.fixture
def claimed(tmp_path: Path, new_db: NewDb) -> Iterator[Claimed]:
    server = Server(tmp_path / "home", WORKERS="0", **new_db())
    server.start()
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("remote", [("a", 0.05), ("b", 0.05)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
        db = Database(_db_url(server))
        try:
            claim = RunService(db).claim("remote:1")
        finally:
            db.close()
        assert claim is not None and claim["id"] == run_id
        secret = (server.home / "secret_key").read_text().strip()
        yield Claimed(server, run_id, claim, secret)
    finally:
        server.stop()


EVENT = {"type": "step.started", "step": "a", "ts": 1795000000.0, "data": {}}


def test_report_routes_take_only_the_run_token_of_the_claim(claimed: Claimed) -> None:
    key = claimed.server.admin_key
    assert claimed.post("report", {"events": []}, token=key).status_code == 401
    assert claimed.post("report", {"events": []}, token="garbage").status_code == 401
    expired = claimed.post("report", {"events": []}, token=claimed.token(ttl=-30))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    other = claimed.post("report", {"events": []}, token=claimed.token(run_id="someone-else"))
    assert other.status_code == 403
    stale = claimed.post("report", {"events": []}, token=claimed.token(attempt=2))
    assert stale.status_code == 409
    # a run token is not a credential anywhere else
    r = httpx.get(f"{claimed.server.url}/api/v1/runs", headers={"Authorization": f"Bearer {claimed.token()}"})
    assert r.status_code == 401
    bad = claimed.post("report", {"events": [{**EVENT, "type": "nope"}]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:3] == ["body", "events", 0]


def test_reports_are_stored_once_and_carry_cancel_and_end(claimed: Claimed) -> None:
    first = claimed.post("report", {"events": []})
    assert first.status_code == 200, first.text
    assert first.json() == {"cancel_requested": False, "next_seq": 1, "token": None}
    renewed = claimed.post("report", {"events": []}, token=claimed.token(ttl=600)).json()["token"]
    assert renewed and claimed.post("report", {"events": []}, token=renewed).status_code == 200
    batch = {"first_seq": 1, "events": [EVENT, {**EVENT, "type": "log", "data": {"lines": ["hi"]}}]}
    assert claimed.post("report", batch).json()["next_seq"] == 3
    assert claimed.post("report", batch).json()["next_seq"] == 3  # sent again: stored once
    gap = claimed.post("report", {"first_seq": 9, "events": [EVENT]})
    assert gap.status_code == 422 and "gap" in gap.json()["detail"]
    with claimed.server.client(claimed.server.admin_key) as c:
        events = c.get(f"/api/v1/runs/{claimed.run_id}/events").json()
        assert [e["seq"] for e in events] == [1, 2] and events[1]["data"] == {"lines": ["hi"]}
        assert c.post(f"/api/v1/runs/{claimed.run_id}/cancel").status_code == 200
        assert claimed.post("report", {"events": []}).json()["cancel_requested"] is True
        end = claimed.post("finish", {"status": "cancelled", "details": "cancelled on request"})
        assert end.status_code == 200 and end.json() == {"recorded": True}
        assert claimed.post("finish", {"status": "succeeded"}).json() == {"recorded": False}
        status = c.get(f"/pipelines/{claimed.run_id}/status").json()
        assert status["status"] == "cancelled" and status["details"] == "cancelled on request"
    assert claimed.post("report", {"events": []}).status_code == 409  # ended: nothing more recorded


def test_release_gives_the_run_back_to_the_queue(claimed: Claimed) -> None:
    assert claimed.post("release", {}).json() == {"recorded": True}
    with claimed.server.client(claimed.server.admin_key) as c:
        run = c.get(f"/api/v1/runs/{claimed.run_id}").json()
    assert run["status"] == "queued" and run["attempts"] == 0 and run["worker_id"] is None
    assert claimed.post("release", {}).json() == {"recorded": False}


def test_remote_runner_reports_through_mlops_execute(claimed: Claimed, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(claimed.claim["plan"]))
    remote_home = tmp_path / "remote-home"  # another machine: its own MLOPS_HOME
    env = {**os.environ, "MLOPS_HOME": str(remote_home), "THROTTLE_DISABLE": "true"}
    env.pop("MLOPS_RUN_TOKEN", None)
    cmd = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(plan)]
    refused = subprocess.run(
        [*cmd, "--report-to", claimed.server.url], env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2 and "MLOPS_RUN_TOKEN" in refused.stderr
    token = claimed.token()
    done = subprocess.run(
        [*cmd, "--report-to", claimed.server.url, "--json"],
        env={**env, "MLOPS_RUN_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    run_files = [f for f in (remote_home / "runs" / claimed.run_id).rglob("*") if f.is_file()]
    texts = [f.read_text(errors="replace") for f in run_files]
    assert sum("no run token" in t for t in texts) >= 2  # each step's log: the token is not inherited
    assert not any(token in t for t in texts)
    with claimed.server.client(claimed.server.admin_key) as c:
        assert wait_status(c, claimed.run_id, 10) == "succeeded"
        events = c.get(f"/api/v1/runs/{claimed.run_id}/events").json()
    finished = {e["step"] for e in events if e["type"] == "step.finished"}
    assert finished == {"a", "b"}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def _step_processes(run_id: str, timeout: float) -> list[int]:
    """Processes working in the run's folder (its steps), once they are gone or after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and f"/runs/{run_id}/" in proc.cwd() + "/":
                    alive.append(proc.pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _worker(server: Server) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.cli.main", "worker"],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill9_of_a_standalone_worker_mid_run(tmp_path: Path, new_db: NewDb) -> None:
    server = Server(
        tmp_path / "home",
        WORKERS="0",
        RUN_STALE_AFTER="2",
        POLL_SECONDS="0.1",
        HEARTBEAT_SECONDS="0.2",
        **new_db(),
    )
    server.start()
    first = _worker(server)
    second: subprocess.Popen[bytes] | None = None
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("worker-crash", [("first", 0.05), ("slow", 5)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
            wait_step_started(c, run_id, "slow", 60)
            assert f":{first.pid}:" in c.get(f"/api/v1/runs/{run_id}").json()["worker_id"]
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            assert _step_processes(run_id, 1.0) == []  # the running command step died with its worker
            # no worker is alive: the gateway itself puts the run back in the queue
            assert wait_status(c, run_id, 30, until={"queued"}) == "queued"
            second = _worker(server)
            assert wait_status(c, run_id, 60) == "succeeded"
            run = c.get(f"/api/v1/runs/{run_id}").json()
            assert run["attempts"] == 2 and f":{second.pid}:" in run["worker_id"]
            events = c.get(f"/api/v1/runs/{run_id}/events").json()
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        starts = [i for i, e in enumerate(events) if e["type"] == "run.started"]
        assert len(starts) == 2
        again = [e for e in events[starts[1] :] if e["step"] == "first" and e["type"] == "step.finished"]
        assert again and again[0]["data"]["cached"] is True  # not done twice
        slow_ends = [e for e in events if e["step"] == "slow" and e["type"] == "step.finished"]
        assert len(slow_ends) == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        server.stop()


def test_a_stopped_worker_gives_its_run_back_and_the_next_one_finishes_it(
    tmp_path: Path, new_db: NewDb
) -> None:
    server = Server(tmp_path / "home", WORKERS="0", POLL_SECONDS="0.1", HEARTBEAT_SECONDS="0.2", **new_db())
    server.start()
    first = _worker(server)
    second: subprocess.Popen[bytes] | None = None
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("worker-stop", [("first", 0.05), ("slow", 2)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
            wait_step_started(c, run_id, "slow", 60)
            first.terminate()  # SIGTERM: the run goes back to the queue, the claim does not count
            assert first.wait(30) == 0
            run = c.get(f"/api/v1/runs/{run_id}").json()
            assert run["status"] == "queued" and run["attempts"] == 0, run
            second = _worker(server)
            assert wait_status(c, run_id, 60) == "succeeded", c.get(f"/pipelines/{run_id}/status").json()
        assert (server.home / "runs" / f"{run_id}.released").is_dir()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(20)
        server.stop()


def test_gateway_stopping_gives_its_threads_runs_back_at_once(tmp_path: Path, new_db: NewDb) -> None:
    """SIGTERM to `mlops up` while its worker thread runs a run: its own HTTP server is already closed,
    so the run goes back to the queue through the database (no attempt used, no wait for recovery)."""
    server = Server(tmp_path / "home", POLL_SECONDS="0.1", HEARTBEAT_SECONDS="0.2", WORKERS="1", **new_db())
    server.start()
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("gw-stop", [("slow", 30)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
            wait_status(c, run_id, 30, until={"running"})
        assert server.proc is not None
        server.proc.terminate()
        server.proc.wait(30)  # uvicorn re-raises SIGTERM after its graceful shutdown
        server.start()
        with server.client(server.admin_key) as c:
            run = c.get(f"/api/v1/runs/{run_id}").json()
            assert run["attempts"] <= 1, run  # given back: the interrupted claim does not count
            # queued, or already claimed again by the new process (not still held by the old one)
            assert run["status"] == "queued" or f":{server.proc.pid}:" in (run["worker_id"] or ""), run
            # what the stopped attempt could no longer send over HTTP reached the database
            events = c.get(f"/api/v1/runs/{run_id}/events").json()
            assert any(e["type"] == "step.cancelled" and e["step"] == "slow" for e in events), events
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
            c.post(f"/api/v1/runs/{run_id}/cancel")
    finally:
        server.stop()
