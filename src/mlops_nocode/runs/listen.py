"""Cross-process wake-up on PostgreSQL: a run queued by any gateway process sends `NOTIFY`, and every
worker process LISTENing wakes at once instead of at its next poll (SQLite has no such channel: workers
in other processes poll every POLL_SECONDS)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import make_url

log = logging.getLogger("mlops_nocode.listen")
CHANNEL = "mlops_runs_queued"


def libpq_url(sqlalchemy_url: str) -> str:
    """The URL psycopg connects with (no SQLAlchemy driver suffix)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class QueueListener:
    """A thread holding one connection that LISTENs on CHANNEL and calls `on_notify` for each message;
    it reconnects (with a pause) when the connection is lost."""

    def __init__(self, sqlalchemy_url: str, on_notify: Callable[[], None]) -> None:
        self.url = libpq_url(sqlalchemy_url)
        self.on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="queue-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3.0)

    def _loop(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.on_notify()
            except psycopg.Error as e:
                log.warning("queue notifications unavailable (%s); polling meanwhile", e)
                self._stop.wait(2.0)
