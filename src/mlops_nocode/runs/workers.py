"""Workers' liveness: each worker loop of a process has a row in the `workers` table that a heartbeat
thread refreshes every WORKER_HEARTBEAT_SECONDS, even while idle or busy with a run; a clean stop removes
the rows. /metrics counts the recent beats (mlops_workers_live) and shows each one's age."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence

from sqlalchemy import delete, update
from sqlalchemy.exc import SQLAlchemyError

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.labels import upsert_ignore
from mlops_nocode.runs.models import WorkerRow

log = logging.getLogger("mlops_nocode.worker")
FORGET_AFTER = 3600.0  # rows of workers that died without a clean stop are removed after this


class Heartbeats:
    """Beats for the named worker loops of this process from one thread."""

    def __init__(self, db: Database, names: Sequence[str], every: float) -> None:
        self.db, self.names, self.every = db, list(names), every
        self.started_at = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)

    def beat(self) -> None:
        """Record that every worker loop of this process is alive now."""
        now = time.time()
        with self.db.session() as s:
            done = s.execute(
                update(WorkerRow).where(WorkerRow.name.in_(self.names)).values(heartbeat_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if done < len(self.names):
                for name in self.names:
                    row = {
                        "name": name,
                        "host": socket.gethostname()[:255],
                        "pid": os.getpid(),
                        "started_at": self.started_at,
                        "heartbeat_at": now,
                    }
                    s.execute(upsert_ignore(s, WorkerRow, row))
            s.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < now - FORGET_AFTER))

    def start(self) -> None:
        if self.names:
            self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove this process's rows (a clean stop is not a dead worker)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        if not self.names:
            return
        try:
            with self.db.session() as s:
                s.execute(delete(WorkerRow).where(WorkerRow.name.in_(self.names)))
        except SQLAlchemyError:
            log.exception("cannot remove the heartbeat rows of this process's workers")

    def _loop(self) -> None:
        while True:
            try:
                self.beat()
            except SQLAlchemyError:
                log.exception("cannot record the workers' heartbeat")
            if self._stop.wait(self.every):
                return
