"""The Runner's side of the shared (S3) artifact store: publishing a step's outputs and its result, and
waiting for steps another Runner runs (`Runner(..., elsewhere=...)`). See docs/TARGETS.md."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from mlops_nocode.runtime.redaction import Redactor
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.shared import SharedArtifacts
from mlops_nocode.runtime.state import Cancelled, StepState


class SharedSteps:
    """Mixed into the Runner, whose attributes these are."""

    shared: SharedArtifacts | None
    elsewhere: frozenset[str]
    elsewhere_timeout: float
    run_id: str
    _q: queue.Queue[tuple[str, int, str | None]]
    _jobs: dict[str, StepState]
    _cancel: threading.Event

    if TYPE_CHECKING:  # the Runner's own, declared here for the type checker only

        @property
        def redactor(self) -> Redactor: ...

        def emit(self, type_: str, step: str | None = None, **data: Any) -> None: ...

    def _setup_failed(self, state: StepState, error: str) -> bool:
        state.status, state.error = "failed", self.redactor.text(error)
        self.emit("step.failed", state.step.id, attempt=state.attempts, error=state.error, final=True)
        self._share_result(state)
        return False

    def _await_elsewhere(self, state: StepState) -> bool:
        """Wait, in a thread, for the result of a step another Runner runs (see `_finish_elsewhere`)."""
        shared = self.shared
        assert shared is not None
        job = f"{state.step.id}#elsewhere"
        state.status, state.started = "running", time.monotonic()
        deadline = state.started + self.elsewhere_timeout
        self.emit("step.started", state.step.id, attempt=0, playbook=state.step.playbook, elsewhere=True)

        def wait() -> None:
            try:
                found = shared.wait_result(self.run_id, state.step.id, deadline, self._cancel)
                self._q.put((job, 0, json.dumps(found)))
            except Cancelled:
                self._q.put((job, 1, json.dumps({"status": "cancelled", "error": "the run was cancelled"})))
            except (StoreError, OSError, ValueError) as e:
                self._q.put((job, 1, json.dumps({"status": "failed", "error": str(e)})))

        self._jobs[job] = state
        threading.Thread(target=wait, name=f"elsewhere-{state.step.id}", daemon=True).start()
        return True

    def _finish_elsewhere(self, state: StepState, result: str | None) -> bool:
        found = json.loads(result or "{}")
        state.duration = time.monotonic() - (state.started or time.monotonic())
        if found.get("status") == "succeeded":
            state.status, state.outputs = "succeeded", found["outputs"]
            self.emit(
                "step.finished",
                state.step.id,
                status="succeeded",
                cached=False,
                elsewhere=True,
                duration=round(state.duration, 4),
                metrics=metrics_of(state.outputs),
            )
            return True
        state.status = "failed"
        state.error = self.redactor.text(f"ran elsewhere: {found.get('status')}: {found.get('error')}")
        self.emit("step.failed", state.step.id, attempt=0, error=state.error, final=True)
        return True

    def _share(self, state: StepState) -> None:
        """Publish a succeeded step's outputs to the shared store, then its cache record and result."""
        if self.shared is None:
            return
        self.shared.publish(state.outputs)
        if state.cache_key is not None:
            self.shared.cache_put(state.cache_key, state.outputs)
        self.shared.put_result(self.run_id, state.step.id, "succeeded", state.outputs)

    def _share_result(self, state: StepState) -> None:
        """Record a step's failure in the shared store, so that Runners waiting for it stop waiting."""
        if self.shared is not None and state.step.id not in self.elsewhere:
            with contextlib.suppress(StoreError, OSError, ValueError):
                self.shared.put_result(self.run_id, state.step.id, state.status, error=state.error)


def metrics_of(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The values of a step's metrics outputs, as step events carry them."""
    return {k: v["value"] for k, v in outputs.items() if v.get("type") == "metrics"}
