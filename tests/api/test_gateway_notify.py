"""PostgreSQL: a run queued through the gateway wakes the workers of other processes at once
(LISTEN/NOTIFY) instead of at their next poll."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.api.conftest import Server, sleeper, wait_status
from tests.api.pgcluster import Cluster


def test_a_queued_run_wakes_worker_processes_on_postgresql(tmp_path: Path, postgres: Cluster) -> None:
    server = Server(tmp_path / "home", WORKERS="0", DATABASE_URL=postgres.create_database())
    server.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.cli.main", "worker"],
        env={**server.env, "POLL_SECONDS": "120"},  # a poll would come far too late for the waits below
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with server.client(server.admin_key) as c:
            first = c.post("/pipelines/deploy", json={"pipeline": sleeper("n1", [("a", 0.01)])})
            assert wait_status(c, first.json()["pipeline_id"], 110) == "succeeded"
            # the worker is now idle, its next poll two minutes away: only the notification can wake it
            second = c.post("/pipelines/deploy", json={"pipeline": sleeper("n2", [("a", 0.01)])})
            assert wait_status(c, second.json()["pipeline_id"], 45) == "succeeded"
    finally:
        worker.terminate()
        worker.wait(20)
        server.stop()
