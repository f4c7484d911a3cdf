"""The Runner: executes a Plan's steps on this machine, in parallel where the DAG allows."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime.attemptends import AttemptEnds
from mlops_nocode.runtime.codekey import CodeDigests
from mlops_nocode.runtime.events import Event, JsonLines, Sink
from mlops_nocode.runtime.executors import Executor, UnknownRuntime, known
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.forkserver import ForkServer, ForkServerError
from mlops_nocode.runtime.gpusched import GpuScheduling
from mlops_nocode.runtime.handoff import StepResults, arrived, deployment_of, publish
from mlops_nocode.runtime.home import mlops_home
from mlops_nocode.runtime.launching import Launching, placed_on
from mlops_nocode.runtime.limits import OutputLimits, load_limits
from mlops_nocode.runtime.logfollow import LogFollower
from mlops_nocode.runtime.metricfollow import MetricFollower
from mlops_nocode.runtime.redaction import Redactor, redactor_for
from mlops_nocode.runtime.rungate import RunGate
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.sandbox import Confinement, RunSandbox, resolve
from mlops_nocode.runtime.secrets import short_warning
from mlops_nocode.runtime.shared import SharedArtifacts, open_shared
from mlops_nocode.runtime.sharedsteps import metrics_of
from mlops_nocode.runtime.state import Cancelled, RunResult, StepState, Throttle, new_run_id
from mlops_nocode.runtime.store import ArtifactStore, CacheIndex

LOG_EVENT_LINES = 200  # per attempt, past LIVE_LOG_LINES
LIVE_LOG_LINES = 1000  # per attempt, sent while the step runs
FOLLOW_EVERY = 0.5


class Runner(Launching, AttemptEnds, GpuScheduling):
    """Runs one Plan. Events go to `sink` (and to `run_dir/events.jsonl`); `run()` returns the result."""

    def __init__(
        self,
        plan: Plan,
        *,
        sink: Sink | None = None,
        home: Path | None = None,
        use_cache: bool = True,
        max_parallel: int | None = None,
        throttle: Throttle | None = None,
        run_id: str | None = None,
        environ: dict[str, str] | None = None,
        limits: OutputLimits | None = None,
        sandbox: Confinement | None = None,
        shared: SharedArtifacts | bool | None = True,
        elsewhere: Collection[str] = (),
        elsewhere_timeout: float = 24 * 3600.0,
        deployment: str | Collection[str] | None = None,
        results: StepResults | None = None,
        run_dir: Path | None = None,
        input_wait: float = 6 * 3600.0,
    ) -> None:
        """`shared`: the S3 store (True: the one ARTIFACT_STORE_* names, if any; StoreError when those
        settings are bad). `elsewhere`: ids of steps another Runner runs: their results are awaited in
        the shared store (for at most `elsewhere_timeout` seconds each) instead of being run here.
        With `deployment` (a name, or the names of the deployments this Runner drives: local and ray),
        only the steps placed on it run; the inputs they need from steps of other
        deployments are awaited (in the shared store when there is one, else in `results`, where this
        Runner publishes the end of its own steps)."""
        mine = (
            None if deployment is None else {deployment} if isinstance(deployment, str) else set(deployment)
        )
        self.deployment = None if mine is None else ",".join(sorted(mine))
        self.results, self.input_wait = results, input_wait
        own = [s for s in plan.steps if mine is None or deployment_of(s) in mine]
        own_ids = {s.id for s in own}
        self._own = tuple(own)
        self.foreign = {n for s in own for n in s.needs if n not in own_ids}
        kept = own_ids | self.foreign
        unsupported = sorted({s.runtime for s in own if s.id not in elsewhere} - known())
        if unsupported:
            raise ValueError(
                f"the runner cannot run runtimes {unsupported}; it runs {', '.join(sorted(known()))}"
            )
        self.plan = plan
        self.home = home or mlops_home()
        self.run_id = run_id or new_run_id()
        self.run_dir = run_dir or self.home / "runs" / self.run_id
        self.store = ArtifactStore(self.home / "artifacts")
        self.cache = CacheIndex(self.home / "cache")
        self.limits = limits if limits is not None else load_limits()
        self.shared = open_shared(self.store, self.limits) if shared is True else shared or None
        self.elsewhere = frozenset(elsewhere)
        if self.elsewhere and self.shared is None:
            raise ValueError("steps run elsewhere need a shared artifact store (ARTIFACT_STORE_URL)")
        self.elsewhere_timeout = elsewhere_timeout
        if self.foreign and self.shared is not None:  # the other deployments' results come through it
            self.elsewhere = self.elsewhere | self.foreign
            self.elsewhere_timeout = min(self.elsewhere_timeout, input_wait)
            self.foreign, self.results = set(), None
        self._stored = 0  # bytes of artifacts this run has stored (RUN_OUTPUTS_MAX_BYTES)
        self.use_cache = use_cache
        self.max_parallel = max(1, max_parallel or os.cpu_count() or 2)
        self.throttle = throttle
        self.environ = environ if environ is not None else dict(os.environ)
        self.confinement = sandbox or resolve()  # SandboxError when STEP_SANDBOX cannot be had here
        self._box: RunSandbox | None = None
        self.sink = sink
        self.states = {s.id: StepState(s) for s in plan.steps if s.id in kept}
        self._q: queue.Queue[tuple[str, int, str | None]] = queue.Queue()
        self._cancel = threading.Event()
        self._jobs: dict[str, StepState] = {}
        self._secrets: dict[str, str] = {}
        self._followers: dict[str, LogFollower] = {}
        self._metric_followers: dict[str, MetricFollower] = {}
        self._followed_at = 0.0
        self._server: ForkServer | None = None
        self._executors: dict[str, Executor] = {}
        self._ctx: ExecContext | None = None
        self._codes = CodeDigests(self.home)  # what a step depends on, in its cache key (docs/STEPS.md)
        self._events: Sink = lambda event: None
        self._gate = RunGate(throttle.gate(), f"run {self.run_id}") if throttle is not None else None

    def cancel(self) -> None:
        """Ask the run to stop; safe from any thread."""
        self._cancel.set()
        self._q.put(("", 0, None))

    @property
    def redactor(self) -> Redactor:
        """Masks every form of the secret values the run's steps were given so far."""
        return redactor_for(self._secrets.values())

    def emit(self, type_: str, step: str | None = None, **data: Any) -> None:
        if self._secrets:
            data = self.redactor.data(data)
        event = Event(type_, self.run_id, step, data)
        self._events(event)
        if self.sink is not None:
            self.sink(event)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM ask the run to stop; the scheduler stops at its next safe point (never in
        the middle of its own bookkeeping, as an exception raised anywhere would)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: object) -> None:
            self.cancel()

        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def run(self) -> RunResult:
        (self.run_dir / "steps").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "work").mkdir(exist_ok=True)
        self.plan.dump(self.run_dir / "plan.json")
        self.store.clean_staging()
        started = time.monotonic()
        status = "failed"
        with open(self.run_dir / "events.jsonl", "a", encoding="utf-8") as events_file:
            self._events = JsonLines(events_file)
            self.emit(
                "run.started",
                pipeline=self.plan.root,
                steps=len(self.states) - len(self.foreign),
                parameters=self.plan.parameters,
                run_dir=str(self.run_dir),
            )
            try:
                with self._signals():
                    if any(s.runtime == "python" and placed_on(s) != "ray" for s in self._own):
                        self._fork_server()  # warm before the first step (Ray steps never need it)
                    self._gpu_setup()
                    self._loop()
                ok = all(s.status == "succeeded" for s in self.states.values())
                status = "succeeded" if ok else "failed"
            except (KeyboardInterrupt, Cancelled):
                self._stop_all()
                status = "cancelled"
            except BaseException:
                self._stop_all()  # never leave step processes behind, whatever went wrong here
                raise
            finally:
                self._close_executors()
                self._gpu_close()
                if self._server is not None:
                    self._server.close()
            duration = time.monotonic() - started
            outputs = self.redactor.data(self._outputs())
            self.emit("run.finished", status=status, duration=round(duration, 4), outputs=outputs)
        result = RunResult(self.run_id, status, self.plan.root, duration, self.states, outputs, self.run_dir)
        with contextlib.suppress(OSError):  # e.g. a full disk: the result is still returned
            summary = self.redactor.data(result.summary())
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return result

    def _outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, b in self.plan.outputs.items():
            if b.step not in self.states or b.step in self.foreign:
                continue
            rec = self.states[b.step].outputs.get(b.output)
            if rec is not None:
                out[name] = rec["value"] if "value" in rec else rec["path"]
        return out

    def _loop(self) -> None:
        # a step of another deployment waits for nothing here: its end is awaited in `results`
        own = {sid: st for sid, st in self.states.items() if sid not in self.foreign}
        waiting = {sid: set(st.step.needs) & self.states.keys() for sid, st in own.items()}
        waiting.update((sid, set()) for sid in self.foreign)
        children: dict[str, list[str]] = {sid: [] for sid in self.states}
        for st in own.values():
            for n in st.step.needs:
                if n in children:
                    children[n].append(st.step.id)
        ready = [sid for sid, deps in waiting.items() if not deps and sid not in self.foreign]
        awaiting = set(self.foreign)
        wait_until = time.monotonic() + self.input_wait
        running = 0
        remaining = len(self.states)
        while remaining:
            if self._cancel.is_set():
                raise Cancelled
            for other in sorted(awaiting):
                if self._arrived(self.states[other], wait_until):
                    awaiting.discard(other)
                    remaining -= self._settle(self.states[other], children, waiting, ready)
            if not remaining:
                break
            while running < self.max_parallel:
                now = time.monotonic()
                sid = next(
                    (r for r in ready if self.states[r].not_before <= now and self._gpu_ready(r)), None
                )
                if sid is not None and self._gate is not None:  # the CPU throttler (docs/THROTTLE.md)
                    sid, released = self._gate.next(sid, self._gpu_startable(ready, sid), self.states, now)
                    if released is not None:
                        self.emit("throttle", None, **released)
                if sid is None:
                    break
                ready.remove(sid)
                if self._start(self.states[sid]):
                    running += 1
                else:
                    self._gpu_release(sid)
                    remaining -= self._settle(self.states[sid], children, waiting, ready)
            if not remaining:
                break
            if time.monotonic() - self._followed_at >= FOLLOW_EVERY:
                self._follow_logs()
                self._gpu_tick()
            try:
                job, code, result = self._q.get(timeout=self._next_wake(ready))
            except queue.Empty:
                self._check_deadlines()
                continue
            if not job:
                continue
            state = self._jobs.pop(job)
            running -= 1
            self._gpu_release(state.step.id)
            if self._finish(state, code, result):
                remaining -= self._settle(state, children, waiting, ready)
            else:
                ready.append(state.step.id)

    def _next_wake(self, ready: list[str]) -> float:
        now = time.monotonic()
        times = [s.deadline for s in self._jobs.values() if s.deadline is not None]
        if self._gate is not None and self._gate.retry_at is not None and ready:
            times.append(self._gate.retry_at)
        times += [self.states[r].not_before for r in ready if self.states[r].not_before > now]
        return max(0.005, min([0.5, *(t - now for t in times)]))

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for state in self._jobs.values():
            if state.deadline is not None and now >= state.deadline and state.current is not None:
                state.current.timed_out = True
                self._kill(state.current, signal.SIGKILL)

    def _settle(
        self, state: StepState, children: dict[str, list[str]], waiting: dict[str, set[str]], ready: list[str]
    ) -> int:
        """Release or skip the dependants of a finished step; return how many steps reached an end."""
        ended = 1
        self._publish(state)
        if state.status == "succeeded":
            for c in children[state.step.id]:
                waiting[c].discard(state.step.id)
                if not waiting[c] and self.states[c].status == "pending":
                    ready.append(c)
            return ended
        stack = list(children[state.step.id])
        while stack:
            c = stack.pop()
            cs = self.states[c]
            if cs.status == "pending":
                cs.status = "skipped"
                cs.error = f"upstream step {state.step.id} {state.status}"
                self.emit("step.skipped", c, reason=cs.error)
                self._publish(cs)
                ended += 1
                stack.extend(children[c])
        return ended

    def _arrived(self, state: StepState, wait_until: float) -> bool:
        """Whether the end of a step of another deployment is known (then `state` holds it)."""
        return arrived(self.results, self.run_id, state, wait_until, self.input_wait)

    def _publish(self, state: StepState) -> None:
        """Tell the other deployments of the run how one of this Runner's steps ended."""
        if self.results is not None and self.deployment is not None and state.step.id not in self.foreign:
            publish(self.results, self.run_id, state, deployment_of(state.step))

    def _inputs(self, step: PlanStep) -> dict[str, dict[str, Any]]:
        return {name: self.states[b.step].outputs[b.output] for name, b in step.inputs.items()}

    def _start(self, state: StepState) -> bool:
        """Launch the next attempt, or finish at once from cache or a setup failure (then return False)."""
        step = state.step
        inputs = self._inputs(step)
        if state.attempts == 0 and step.cache and not step.secrets:
            state.cache_key = CacheIndex.key(
                step.playbook,
                step.digest + self._codes.of(step),
                step.params,
                {k: v["digest"] for k, v in inputs.items()},
            )
            try:
                hit = self._cache_get(state.cache_key) if self.use_cache else None
            except (StoreError, OSError) as e:
                return self._setup_failed(state, str(e))
            if hit is not None:
                state.status, state.cached, state.outputs = "succeeded", True, hit
                self.emit(
                    "step.finished",
                    step.id,
                    status="succeeded",
                    cached=True,
                    duration=0.0,
                    metrics=metrics_of(hit),
                )
                return False
        if step.id in self.elsewhere:
            return self._await_elsewhere(state)
        state.attempts += 1
        try:
            executor = self._executor(step.runtime, placed_on(step))
        except UnknownRuntime as e:
            return self._setup_failed(state, str(e))
        a = att.Attempt(
            step,
            state.attempts,
            self.run_dir / "steps" / att.step_stem(step.id, state.attempts),
            inputs,
            files=executor.output_files(step),
        )
        state.current = a
        state.status = "running"
        state.started = time.monotonic()
        self.emit("step.started", step.id, attempt=a.number, playbook=step.playbook)
        try:
            a.secrets = att.resolve_secrets(step, self.environ)
            own = getattr(executor, "attempt_secrets", None)
            if own is not None:  # values the executor uses itself (a model route's key): redacted too
                a.secrets.update(own(a))
            self._secrets.update(a.secrets)
            for name, value in a.secrets.items():
                if warning := short_warning(name, value):
                    self.emit("log", step.id, line=warning, attempt=a.number)
            a.env.update(self._gpu_env(a))
            a.prepare()
            cap = int(self.limits.step_log_line_max_bytes)
            self._followers[a.job] = LogFollower(a.log, self._secrets, LIVE_LOG_LINES, LOG_EVENT_LINES, cap)
            self._metric_followers[a.job] = MetricFollower(a.events, int(self.limits.step_values_max_bytes))
            executor.start(a)
        except (att.StepFailure, ForkServerError, OSError, ValueError) as e:
            self._followers.pop(a.job, None)
            self._metric_followers.pop(a.job, None)
            state.status, state.error = "failed", self.redactor.text(str(e))
            state.duration = time.monotonic() - state.started
            self.emit("step.failed", step.id, attempt=a.number, error=state.error, final=True)
            self._share_result(state)
            return False
        state.deadline = state.started + step.timeout if step.timeout else None
        self._jobs[a.job] = state
        return True

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        if self.shared is not None:
            return self.shared.cache_get(key)
        return self.cache.get(key)
