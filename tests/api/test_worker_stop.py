"""A worker thread that does not stop in time (a Runner slow to cancel under load) must not leave its run
held by a process that is exiting: WorkerThreads.stop gives the run back to the queue itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.service import RunService
from mlops_nocode.runs.worker import Worker, WorkerThreads
from mlops_nocode.settings import Settings


def _docs() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "noop", "version": "1.0.0"},
            "spec": {"runtime": "command", "command": {"argv": ["true"]}},
        },
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "held", "version": "1.0.0"},
            "spec": {"steps": [{"id": "a", "uses": "playbook/noop@1.0.0"}]},
        },
    ]


def test_a_worker_thread_stuck_past_the_stop_timeout_has_its_run_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'mlops.db'}")
    db.migrate(tmp_path)
    service = RunService(db)
    run_id = service.create(_docs())["id"]
    started, release = threading.Event(), threading.Event()

    def stuck(self: Worker, claimed: dict[str, Any]) -> None:  # ignores the stop, as a stuck Runner would
        started.set()
        release.wait(30)

    monkeypatch.setattr(Worker, "execute", stuck)
    monkeypatch.setattr(Worker, "_gateway_answers", lambda self: True)
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'mlops.db'}", poll_seconds=0.05)
    threads = WorkerThreads(service, settings, 1, "k" * 48)
    threads.start()
    try:
        assert started.wait(30), "the worker never claimed the run"
        assert service.get(run_id)["status"] == "running"
        threads.stop(timeout=0.2)
        run = service.get(run_id)
        assert run["status"] == "queued" and run["attempts"] == 0, run
    finally:
        release.set()
        db.close()
