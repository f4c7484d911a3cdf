"""The gateway's recovery thread: runs whose worker stopped heartbeating are re-queued or ended."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from mlops_nocode.runs.scrub import scrub_run_files
from mlops_nocode.runs.service import RunService
from mlops_nocode.settings import Settings

if TYPE_CHECKING:
    from mlops_nocode.runs.webhooks import Notifier

log = logging.getLogger("mlops_nocode.worker")


class Recovery:
    """A thread of the gateway that recovers the runs of dead workers every few seconds, so no run stays
    `running` when its worker is gone, even while no worker is idle (or none runs at all)."""

    def __init__(self, service: RunService, settings: Settings, notifier: Notifier | None = None) -> None:
        self.service, self.settings, self.notifier = service, settings, notifier
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _loop(self) -> None:
        every = min(self.settings.run_stale_after / 2, 5.0)
        while not self._stop.wait(every):
            try:
                stale = self.service.stale_runs(self.settings.run_stale_after)
                for run_id in stale:  # before anyone can claim them again (and rename their folder)
                    self._scrub(run_id)
                requeued, ended = self.service.recover(
                    self.settings.run_stale_after, self.settings.max_run_attempts
                )
            except Exception:
                log.exception("cannot recover the runs of dead workers")
                continue
            if requeued or ended:
                log.warning("recovered runs of dead workers: %d re-queued, %d ended", requeued, len(ended))
            for run_id in ended:
                if run_id not in stale:
                    self._scrub(run_id)
                if self.notifier is not None:
                    self.notifier.run_ended(run_id)

    def _scrub(self, run_id: str) -> None:
        """Mask the secrets (from the vault) in what the dead worker's steps left in this MLOPS_HOME."""
        try:
            plan = self.service.plan_of(run_id)
            scrub_run_files(self.settings.home, run_id, plan, self.service.redactor(run_id))
        except Exception:
            log.exception("cannot mask the secrets in the files of run %s", run_id)
