"""Crash recovery: kill -9 the gateway in the middle of a run; after a restart the run ends."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import NewDb, Server, sleeper, wait_status, wait_step_started


def test_kill9_mid_run_then_restart_resumes(tmp_path: Path, new_db: NewDb) -> None:
    server = Server(
        tmp_path / "home", RUN_STALE_AFTER="2", POLL_SECONDS="0.1", HEARTBEAT_SECONDS="0.2", **new_db()
    )
    server.start()
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("crash", [("first", 0.05), ("slow", 4)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
            wait_step_started(c, run_id, "slow", 30)
        server.kill9()
        server.start()
        with server.client(server.admin_key) as c:
            assert wait_status(c, run_id, 60) == "succeeded"
            run = c.get(f"/api/v1/runs/{run_id}").json()
            assert run["attempts"] == 2
            events = c.get(f"/api/v1/runs/{run_id}/events").json()
            starts = [e for e in events if e["type"] == "run.started"]
            assert len(starts) == 2
            after = events[events.index(starts[1]) :]
            first = [e for e in after if e["step"] == "first" and e["type"] == "step.finished"]
            assert first and first[0]["data"]["cached"] is True
        assert (server.home / "runs" / f"{run_id}.attempt-1").is_dir()
    finally:
        server.stop()


def test_run_fails_with_reason_after_too_many_crashes(tmp_path: Path, new_db: NewDb) -> None:
    server = Server(
        tmp_path / "home",
        RUN_STALE_AFTER="3",
        POLL_SECONDS="0.1",
        HEARTBEAT_SECONDS="0.2",
        MAX_RUN_ATTEMPTS="1",
        **new_db(),
    )
    server.start()
    try:
        with server.client(server.admin_key) as c:
            docs = sleeper("crash-twice", [("slow", 30)])
            run_id = c.post("/pipelines/deploy", json={"pipeline": docs}).json()["pipeline_id"]
            wait_status(c, run_id, 30, until={"running"})
        server.kill9()
        server.start()
        with server.client(server.admin_key) as c:
            assert wait_status(c, run_id, 30) == "failed"
            details = c.get(f"/pipelines/{run_id}/status").json()["details"]
            assert "no heartbeat" in details and "giving up" in details
    finally:
        server.stop()
