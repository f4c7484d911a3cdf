"""How an attempt ends, on the Runner's side: its log and metric events, its outputs collected (within the
output limits, interruptible), then success, a retry, or a final failure; and how a cancel stops them."""

from __future__ import annotations

import queue
import shutil
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime import outputs
from mlops_nocode.runtime.collect import Budget, Stopped, is_regular_or_absent, remove_unless_regular
from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.logfollow import LogFollower
from mlops_nocode.runtime.metricfollow import MetricFollower
from mlops_nocode.runtime.redaction import Redactor, redact_files
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.sharedsteps import SharedSteps, metrics_of
from mlops_nocode.runtime.state import Cancelled, StepState
from mlops_nocode.runtime.stepsecrets import masked_values, value_files
from mlops_nocode.runtime.store import ArtifactStore, CacheIndex


class AttemptEnds(SharedSteps):
    """Mixed into the Runner, whose attributes these are."""

    limits: OutputLimits
    store: ArtifactStore
    cache: CacheIndex
    _stored: int
    _followers: dict[str, LogFollower]
    _metric_followers: dict[str, MetricFollower]
    _followed_at: float
    _cancel: threading.Event
    states: dict[str, StepState]
    foreign: set[str]

    if TYPE_CHECKING:  # the Runner's own, declared here for the type checker only

        @property
        def redactor(self) -> Redactor: ...

        def emit(self, type_: str, step: str | None = None, **data: Any) -> None: ...

        def _publish(self, state: StepState) -> None: ...

        def _kill(self, a: att.Attempt, sig: int) -> None: ...

        def _node_of(self, a: att.Attempt) -> dict[str, str] | None: ...

    def _finish(self, state: StepState, code: int, result: str | None) -> bool:
        """Record an attempt's end; return False when the step goes back to the queue for a retry."""
        if state.step.id in self.elsewhere:
            return self._finish_elsewhere(state, result)
        a = state.current
        assert a is not None
        state.duration = time.monotonic() - (state.started or time.monotonic())
        deadline, state.deadline = state.deadline, None
        shutil.rmtree(a.tmp, ignore_errors=True)
        node = self._node_of(a)
        where = {"node": node} if node else {}  # the Ray node that ran it
        self._emit_step_events(a)
        try:
            if a.timed_out:
                raise att.StepFailure(f"timed out after {a.step.timeout:g}s")
            state.outputs = self._collect(a, code, result, deadline)
            try:
                self._share(state)
            except StoreError as e:
                raise att.StepFailure(f"cannot share its outputs: {e}") from None
        except att.StepFailure as e:
            error = self.redactor.text(str(e))
            final = state.attempts > state.step.retries
            self.emit(
                "step.failed",
                state.step.id,
                attempt=a.number,
                error=error,
                final=final,
                duration=round(state.duration, 4),
                **where,
            )
            if not final:
                delay = min(0.1 * 2 ** (state.attempts - 1), 5.0)
                state.not_before = time.monotonic() + delay
                self.emit("step.retrying", state.step.id, attempt=a.number + 1, delay=delay)
                return False
            state.status, state.error = "failed", error
            self._share_result(state)
            return True
        state.status = "succeeded"
        if state.cache_key is not None and self.shared is None:
            self.cache.put(state.cache_key, state.outputs)
        self.emit(
            "step.finished",
            state.step.id,
            status="succeeded",
            cached=False,
            attempt=a.number,
            duration=round(state.duration, 4),
            metrics=metrics_of(state.outputs),
            **where,
        )
        return True

    def _collect(
        self, a: att.Attempt, code: int, result: str | None, deadline: float | None
    ) -> dict[str, Any]:
        """The attempt's outputs, stored; interrupted by cancel (raises Cancelled) and by the step's
        deadline, within the output limits."""

        def stop() -> str | None:
            if self._cancel.is_set():
                return "the run was cancelled"
            if deadline is not None and time.monotonic() >= deadline:
                return f"timed out after {a.step.timeout:g}s while its outputs were collected"
            return None

        budget = Budget(self.limits, stop, run_before=self._stored)
        try:
            raw = masked_values(a, outputs.raw_outputs(a, code, result, budget), self.redactor)
            return outputs.ingest(a, raw, self.store, budget)
        except Stopped as e:
            if self._cancel.is_set():
                raise Cancelled from None
            raise att.StepFailure(str(e)) from None
        except (OSError, ValueError, TypeError) as e:  # whatever a step left, the run goes on
            raise att.StepFailure(f"cannot collect the step's outputs: {type(e).__name__}: {e}") from e
        finally:
            self._stored += budget.step_bytes
            redact_files((a.result, *value_files(a)), self.redactor)  # a large result, command value files

    def _follow_logs(self) -> None:
        """Lines the running steps wrote since the last look, as `log` events."""
        self._followed_at = time.monotonic()
        for job, follower in self._followers.items():
            if not is_regular_or_absent(follower.path):
                continue  # a step replaced its log by a link or a FIFO: never read through it
            step, _, number = job.rpartition("#")
            for line in follower.poll():
                self.emit("log", step, line=line, attempt=int(number))
        for job, metrics in self._metric_followers.items():
            if is_regular_or_absent(metrics.path):
                self._emit_metrics(job.rpartition("#")[0], metrics.poll())

    def _emit_metrics(self, step: str, records: list[dict[str, Any]]) -> None:
        for ev in records:
            ev = self.redactor.data(ev)
            self.emit("metric", step, name=ev["name"], value=ev["value"], labels=ev["labels"])

    def _emit_step_events(self, a: att.Attempt) -> None:
        follower = self._followers.pop(a.job, None)
        metrics = self._metric_followers.pop(a.job, None)
        remove_unless_regular((a.log, a.events))
        for line in follower.rest() if follower is not None else ():  # before the log is rewritten
            self.emit("log", a.step.id, line=line, attempt=a.number)
        if metrics is None:
            metrics = MetricFollower(a.events, int(self.limits.step_values_max_bytes))
        self._emit_metrics(a.step.id, metrics.poll(final=True))  # before the file is rewritten too
        redact_files((a.log, a.events), self.redactor)

    def _stop_all(self) -> None:
        """Cancel: terminate every running step's process group, wait briefly, then kill what is left.

        A second Ctrl-C while stopping is ignored, so the run is always closed and recorded.
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._stop_steps()
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _stop_steps(self) -> None:
        running = [s.current for s in self._jobs.values() if s.current is not None]
        for state in self._jobs.values():
            if state.current is not None:
                state.current.cancelled = True
                self._kill(state.current, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        while self._jobs and time.monotonic() < deadline:
            try:
                job, _, _ = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            self._jobs.pop(job, None)
        for state in self._jobs.values():
            if state.current is not None:
                self._kill(state.current, signal.SIGKILL)
        for state in self.states.values():
            if state.status in ("pending", "running") and state.step.id not in self.foreign:
                state.status = "cancelled"
                self.emit("step.cancelled", state.step.id)
                self._publish(state)
        self._jobs.clear()
        for a in running:
            remove_unless_regular((a.log, a.events))
            redact_files((a.log, a.events, a.result, *value_files(a)), self.redactor)
            shutil.rmtree(a.tmp, ignore_errors=True)
