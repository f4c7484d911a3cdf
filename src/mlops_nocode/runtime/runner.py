"""The Runner: executes a Plan's steps on this machine, in parallel where the DAG allows."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime import outputs
from mlops_nocode.runtime.codekey import CodeDigests
from mlops_nocode.runtime.collect import Budget, Stopped, is_regular_or_absent, remove_unless_regular
from mlops_nocode.runtime.events import Event, JsonLines, Sink
from mlops_nocode.runtime.executors import Executor, UnknownRuntime, executor_class, known
from mlops_nocode.runtime.executors.base import ExecContext
from mlops_nocode.runtime.forkserver import ForkServer, ForkServerError
from mlops_nocode.runtime.handoff import StepResults, arrived, deployment_of, publish
from mlops_nocode.runtime.home import mlops_home
from mlops_nocode.runtime.limits import OutputLimits, load_limits
from mlops_nocode.runtime.logfollow import LogFollower
from mlops_nocode.runtime.redaction import Redactor, redact_files, redactor_for
from mlops_nocode.runtime.rungate import RunGate
from mlops_nocode.runtime.s3store import StoreError
from mlops_nocode.runtime.sandbox import Confinement, RunSandbox, for_run, resolve, run_env, step_env
from mlops_nocode.runtime.secrets import short_warning
from mlops_nocode.runtime.shared import SharedArtifacts, open_shared
from mlops_nocode.runtime.sharedsteps import SharedSteps
from mlops_nocode.runtime.state import Cancelled, RunResult, StepState, Throttle, new_run_id
from mlops_nocode.runtime.stepsecrets import masked_values, value_files
from mlops_nocode.runtime.store import ArtifactStore, CacheIndex

LOG_EVENT_LINES = 200  # per attempt, past LIVE_LOG_LINES
LIVE_LOG_LINES = 1000  # per attempt, sent while the step runs
FOLLOW_EVERY = 0.5


class Runner(SharedSteps):
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
        deployment: str | None = None,
        results: StepResults | None = None,
        run_dir: Path | None = None,
        input_wait: float = 6 * 3600.0,
    ) -> None:
        """`shared`: the S3 store (True: the one ARTIFACT_STORE_* names, if any; StoreError when those
        settings are bad). `elsewhere`: ids of steps another Runner runs: their results are awaited in
        the shared store (for at most `elsewhere_timeout` seconds each) instead of being run here.
        With `deployment`, only the steps placed on it run; the inputs they need from steps of other
        deployments are awaited (in the shared store when there is one, else in `results`, where this
        Runner publishes the end of its own steps)."""
        self.deployment, self.results, self.input_wait = deployment, results, input_wait
        own = [s for s in plan.steps if deployment is None or deployment_of(s) == deployment]
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
        self._followed_at = 0.0
        self._server: ForkServer | None = None
        self._executors: dict[str, Executor] = {}
        self._ctx: ExecContext | None = None
        self._codes = CodeDigests()  # the code a step can depend on, in its cache key (docs/STEPS.md)
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
                    if any(s.runtime == "python" for s in self._own):
                        self._fork_server()
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
                sid = next((r for r in ready if self.states[r].not_before <= now), None)
                if sid is not None and self._gate is not None:  # the CPU throttler (docs/THROTTLE.md)
                    sid, released = self._gate.next(sid, ready, self.states, now)
                    if released is not None:
                        self.emit("throttle", None, **released)
                if sid is None:
                    break
                ready.remove(sid)
                if self._start(self.states[sid]):
                    running += 1
                else:
                    remaining -= self._settle(self.states[sid], children, waiting, ready)
            if not remaining:
                break
            if time.monotonic() - self._followed_at >= FOLLOW_EVERY:
                self._follow_logs()
            try:
                job, code, result = self._q.get(timeout=self._next_wake(ready))
            except queue.Empty:
                self._check_deadlines()
                continue
            if not job:
                continue
            state = self._jobs.pop(job)
            running -= 1
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
            publish(self.results, self.run_id, state, self.deployment)

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
                    metrics=_metrics(hit),
                )
                return False
        if step.id in self.elsewhere:
            return self._await_elsewhere(state)
        state.attempts += 1
        try:
            executor = self._executor(step.runtime)
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
            self._secrets.update(a.secrets)
            for name, value in a.secrets.items():
                if warning := short_warning(name, value):
                    self.emit("log", step.id, line=warning, attempt=a.number)
            a.prepare()
            cap = int(self.limits.step_log_line_max_bytes)
            self._followers[a.job] = LogFollower(a.log, self._secrets, LIVE_LOG_LINES, LOG_EVENT_LINES, cap)
            executor.start(a)
        except (att.StepFailure, ForkServerError, OSError, ValueError) as e:
            self._followers.pop(a.job, None)
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

    @property
    def box(self) -> RunSandbox:
        """What this run's steps may see (set when the run starts)."""
        if self._box is None:
            # the process's own environment (PATH, PYTHONPATH ...): `environ` is where secrets come from
            self._box = for_run(self.confinement, self.home, self.run_dir, os.environ, self._sources())
        return self._box

    def _sources(self) -> list[str]:
        """The folders steps import and read code from: the plan's Python path and playbook folders."""
        return [*self.plan.python_path, *sorted({s.spec_dir for s in self.plan.steps if s.spec_dir})]

    def _fork_server(self) -> ForkServer:
        """The warm fork server, started on first use with every step module of the plan preloaded; it
        runs command steps too (a pre-forked child confines itself and execs the command)."""
        if self._server is None:
            preload = sorted(
                {s.entrypoint.split(":")[0] for s in self._own if s.entrypoint and s.code is None}
            )
            tmp = self.run_dir / "tmp"
            tmp.mkdir(mode=0o700, exist_ok=True)
            self._server = ForkServer(
                self._exited,
                ["mlops_nocode.runtime.zygote", *preload],
                self.run_dir / "forkserver.log",
                idle=min(self.max_parallel, len(self._own)) + 1,
                log_dir=self.run_dir / "steps",
                env=step_env(run_env(self.confinement, os.environ), tmp, {}),  # = self.box.env
                box=self._server_box,  # the grants are computed while the server's interpreter starts
            )
            self._server.wait_ready()
        return self._server

    def _server_box(self) -> dict[str, Any] | None:
        """The fork server's confinement (None: unconfined), as forkserver.py's `box` says."""
        box = self.box
        if not box.confined:
            return None
        return {"abi": box.confinement.abi, "server": box.server_grants(), "step": box.shared}

    def _exited(self, job: str, code: int, result: str | None) -> None:
        if self._ctx is None or not self._ctx.subjobs.deliver(job, code, result):
            self._q.put((job, code, result))

    def _executor(self, runtime: str) -> Executor:
        """The run's executor of `runtime` (executors/), made on first use."""
        ex = self._executors.get(runtime)
        if ex is None:
            if self._ctx is None:
                self._ctx = ExecContext(
                    run_id=self.run_id,
                    run_dir=self.run_dir,
                    home=self.home,
                    box=self.box,
                    limits=self.limits,
                    done=self._exited,
                    fork_server=self._fork_server,
                    cancelled=self._cancel,
                    environ=self.environ,
                )
            ex = self._executors[runtime] = executor_class(runtime)(self._ctx)
        return ex

    def _close_executors(self) -> None:
        for ex in self._executors.values():
            with contextlib.suppress(Exception):  # one executor's trouble never keeps the others open
                ex.close()

    def _finish(self, state: StepState, code: int, result: str | None) -> bool:
        """Record an attempt's end; return False when the step goes back to the queue for a retry."""
        if state.step.id in self.elsewhere:
            return self._finish_elsewhere(state, result)
        a = state.current
        assert a is not None
        state.duration = time.monotonic() - (state.started or time.monotonic())
        deadline, state.deadline = state.deadline, None
        shutil.rmtree(a.tmp, ignore_errors=True)
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
            metrics=_metrics(state.outputs),
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

    def _emit_step_events(self, a: att.Attempt) -> None:
        follower = self._followers.pop(a.job, None)
        remove_unless_regular((a.log, a.events))
        for line in follower.rest() if follower is not None else ():  # before the log is rewritten
            self.emit("log", a.step.id, line=line, attempt=a.number)
        redact_files((a.log, a.events), self.redactor)
        for line in att.read_lines(a.events, int(self.limits.step_values_max_bytes)):
            with contextlib.suppress(ValueError, KeyError):
                ev = json.loads(line)
                self.emit(
                    "metric", a.step.id, name=ev["name"], value=ev["value"], labels=ev.get("labels", {})
                )

    def _kill(self, a: att.Attempt, sig: int) -> None:
        ex = self._executors.get(a.step.runtime)
        if ex is not None:
            ex.cancel(a, sig)

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


def _metrics(outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: v["value"] for k, v in outputs.items() if v.get("type") == "metrics"}
