"""CPU throttler: before a step starts, wait while the machine is too busy (blueprint §3.7).

The runner asks the throttler's gate (`ThrottleGate`, never blocking) before starting a step;
`Throttler.wait()` blocks on the same gate (the CLI's `mlops throttle wait`, threads). The common "not
busy" path costs a lock, a clock read and two comparisons: the CPU and load readings are cached and
refreshed at most once per CHECK_INTERVAL, so a burst of calls never sleeps and never blocks to measure.
While the machine is busy, one wait is in progress at a time, re-measuring every CHECK_INTERVAL, for at
most MAX_WAIT_TIME; everyone waiting at the same time shares it and is released when it ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "CpuSampler",
    "GateState",
    "GateTicket",
    "ThrottleConfigError",
    "ThrottleGate",
    "ThrottleResult",
    "ThrottleSettings",
    "ThrottleStatus",
    "Throttler",
    "load_settings",
]

logger = logging.getLogger("mlops.throttle")
logger.addHandler(logging.NullHandler())

CpuReader = Callable[[], float]
"""Returns system-wide CPU % busy since its previous call (psutil.cpu_percent(interval=None) semantics)."""
LoadReader = Callable[[], tuple[float, float, float]]
"""Returns the 1, 5 and 15-minute load averages (os.getloadavg semantics)."""


class ThrottleConfigError(ValueError):
    """A throttle environment variable has a bad value; the message names the variable."""


class ThrottleSettings(BaseSettings):
    """Throttler settings, read from environment variables of the same name in upper case (no prefix)."""

    # An empty variable (`THROTTLE_DISABLE=`) counts as unset, as in a shell, not as a bad value.
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_ignore_empty=True
    )

    cpu_threshold: float = Field(90.0, ge=0, allow_inf_nan=False, description="system-wide CPU %")
    load_avg_threshold: float = Field(6.0, ge=0, allow_inf_nan=False, description="5-minute load average")
    check_interval: float = Field(0.1, gt=0, allow_inf_nan=False, description="seconds between checks")
    max_wait_time: float = Field(5.0, ge=0, allow_inf_nan=False, description="seconds, then proceed")
    throttle_disable: bool = Field(False, description="never wait, never measure")
    log_level: str = Field("INFO", description="level of the mlops.throttle logger")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        name = value.strip().upper()
        if name not in logging.getLevelNamesMapping():
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return name


def load_settings() -> ThrottleSettings:
    """Read `ThrottleSettings` from the environment; raise `ThrottleConfigError` naming any bad variable."""
    try:
        return ThrottleSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise ThrottleConfigError("invalid throttle settings: " + "; ".join(problems)) from None


def _busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds from a psutil.cpu_times() tuple, counted as psutil.cpu_percent does."""
    total = float(sum(times)) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


class CpuSampler:
    """System-wide CPU % busy since the previous call; the first call returns a meaningless 0.0.

    Same as `psutil.cpu_percent(interval=None)`, except that the previous sample is kept here and shared by
    all threads: psutil keeps it per thread, so each new scheduler thread would first read a meaningless 0.0.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None

    def __call__(self) -> float:
        """Return the % of CPU time spent busy, over all CPUs, since the previous call."""
        with self._lock:
            now = _busy_total(psutil.cpu_times())
            last, self._last = self._last, now
        if last is None or now[1] <= last[1]:
            return 0.0
        return min(100.0, max(0.0, 100.0 * (now[0] - last[0]) / (now[1] - last[1])))


def _default_load_reader() -> tuple[float, float, float]:
    getloadavg = getattr(os, "getloadavg", None)  # missing on Windows, where psutil emulates it
    return getloadavg() if getloadavg is not None else psutil.getloadavg()


@dataclass(frozen=True, slots=True)
class ThrottleResult:
    """What `Throttler.wait()` did: seconds waited, whether it waited at all and whether it gave up.

    `cpu` and `load` (5-minute) are the last readings; `reason` is why it was last held back ("" when it
    did not wait, "disabled" when THROTTLE_DISABLE is set).
    """

    waited: float
    throttled: bool
    timed_out: bool
    cpu: float
    load: float
    reason: str


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """The throttler's current view: readings, thresholds and whether `wait()` would wait now."""

    cpu: float
    load1: float
    load5: float
    load15: float
    cpu_threshold: float
    load_avg_threshold: float
    would_wait: bool
    reason: str
    disabled: bool


class Throttler:
    """Holds work back while CPU usage or the 5-minute load average is above its threshold.

    Thread-safe: one instance may be shared by all scheduler threads. `cpu_reader`, `load_reader`, `clock`
    and `sleep` are injectable for tests; by default a `CpuSampler`, `os.getloadavg`, `time.monotonic` and
    `time.sleep`. The CPU reader is called once at construction to prime it (that reading is discarded),
    then at most once per CHECK_INTERVAL; until the first real reading, CPU counts as 0 (see `warm_up`).
    Construction sets the level of the "mlops.throttle" logger to LOG_LEVEL.
    """

    def __init__(
        self,
        settings: ThrottleSettings | None = None,
        *,
        cpu_reader: CpuReader | None = None,
        load_reader: LoadReader | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._cpu_reader: CpuReader = cpu_reader if cpu_reader is not None else CpuSampler()
        self._load_reader: LoadReader = load_reader if load_reader is not None else _default_load_reader
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cpu = 0.0
        self._cpu_valid = False
        self._loads: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._sampled_at: float | None = None  # None until primed
        self._gate = ThrottleGate(self)
        logger.setLevel(self.settings.log_level)
        if not self.settings.throttle_disable:
            with self._lock:
                self._prime()

    @classmethod
    def from_env(cls) -> Throttler:
        """A throttler configured from the environment (raises `ThrottleConfigError` on bad values)."""
        return cls(load_settings())

    def _prime(self) -> float:
        """Take the discarded first CPU reading and a load reading; the caller holds the lock."""
        self._cpu_reader()
        self._loads = self._load_reader()
        self._sampled_at = self._clock()
        return self._sampled_at

    def _sample(self, min_age: float) -> tuple[float, tuple[float, float, float]]:
        """Cached readings, refreshed first if the last refresh is at least `min_age` seconds old."""
        with self._lock:
            now = self._clock()
            sampled_at = self._sampled_at if self._sampled_at is not None else self._prime()
            if now - sampled_at >= min_age - 1e-6:  # tolerate float rounding of clock sums
                self._cpu = float(self._cpu_reader())
                self._cpu_valid = True
                self._loads = self._load_reader()
                self._sampled_at = now
                logger.debug("reading: CPU %.1f%%, load average %.2f %.2f %.2f", self._cpu, *self._loads)
            return self._cpu, self._loads

    def _reason(self, cpu: float, load5: float) -> str:
        s = self.settings
        parts = []
        if cpu > s.cpu_threshold:
            parts.append(f"CPU {cpu:.1f}% > CPU_THRESHOLD {s.cpu_threshold:g}%")
        if load5 > s.load_avg_threshold:
            parts.append(f"load average (5 min) {load5:.2f} > LOAD_AVG_THRESHOLD {s.load_avg_threshold:g}")
        return "; ".join(parts)

    def warm_up(self) -> None:
        """Block (at most CHECK_INTERVAL) until a real CPU reading exists.

        For one-shot callers such as the CLI; a long-lived runner does not need it.
        """
        with self._lock:
            if self._cpu_valid:
                return
            sampled_at = self._sampled_at if self._sampled_at is not None else self._prime()
            remaining = self.settings.check_interval - (self._clock() - sampled_at)
        if remaining > 0:
            self._sleep(remaining)
        self._sample(self.settings.check_interval / 2)

    def gate(self) -> ThrottleGate:
        """The throttler's one gate, shared by every caller of `wait()` (see `ThrottleGate`)."""
        return self._gate

    def wait(self, label: str = "") -> ThrottleResult:
        """Block while the machine is busy, at most MAX_WAIT_TIME; `label` (a step id) goes in the logs.

        Callers waiting at the same time share one wait (the gate's): when it ends, all are released.
        """
        s = self.settings
        if s.throttle_disable:
            return ThrottleResult(0.0, False, False, 0.0, 0.0, "disabled")
        ticket = self._gate.enter()
        while True:
            state = self._gate.poll(ticket, label)
            if state.open:
                return state.result
            self._sleep(max(0.0, state.retry_at - self._clock()))

    def status(self) -> ThrottleStatus:
        """Current readings and thresholds, and whether `wait()` would wait now (never waits itself)."""
        s = self.settings
        cpu, (load1, load5, load15) = self._sample(s.check_interval)
        reason = "disabled" if s.throttle_disable else self._reason(cpu, load5)
        return ThrottleStatus(
            cpu=cpu,
            load1=load1,
            load5=load5,
            load15=load15,
            cpu_threshold=s.cpu_threshold,
            load_avg_threshold=s.load_avg_threshold,
            would_wait=bool(reason) and not s.throttle_disable,
            reason=reason,
            disabled=s.throttle_disable,
        )


@dataclass(frozen=True, slots=True)
class GateTicket:
    """A place in the gate's queue: the wait (generation) it joined and when it joined."""

    generation: int
    since: float


@dataclass(frozen=True, slots=True)
class GateState:
    """What `ThrottleGate.poll()` says: open (with the `result` of the wait that held the caller, or of no
    wait), or closed until `retry_at` (a time on the throttler's clock)."""

    open: bool
    result: ThrottleResult
    retry_at: float = 0.0


class ThrottleGate:
    """One wait at a time, shared by everyone waiting at the same time (steps of a run, threads).

    A caller takes a ticket (`enter`), then polls it (`poll`) until the gate opens; `poll` never blocks,
    so a scheduler can keep working while steps wait. When the machine is busy the first poll starts a
    wait; every ticket taken while that wait lasts joins it, and all of them are released together when
    it ends: when the machine is no longer busy, or when MAX_WAIT_TIME has passed since it began. N steps
    ready at once on a busy machine therefore wait at most one MAX_WAIT_TIME in all, not N of them.
    """

    _KEEP = 256  # results of ended waits kept for callers that have not polled since

    def __init__(self, throttler: Throttler) -> None:
        self._t = throttler
        self._lock = threading.Lock()
        self._generation = 0
        self._since: float | None = None  # when the wait in progress began
        self._reason = ""
        self._ended: dict[int, ThrottleResult] = {}
        self.waits = 0
        """How many waits have started (for reports and tests)."""

    def enter(self) -> GateTicket:
        """A ticket for the wait in progress, or for the next one."""
        with self._lock:
            return GateTicket(self._generation, self._t._clock())

    def poll(self, ticket: GateTicket, label: str = "") -> GateState:
        """Open (the caller may go on) or closed until `retry_at`; `label` names the caller in the logs."""
        t, s = self._t, self._t.settings
        if s.throttle_disable:
            return GateState(True, ThrottleResult(0.0, False, False, 0.0, 0.0, "disabled"))
        with self._lock:
            now = t._clock()
            ended = self._ended.get(ticket.generation)
            if ended is not None:  # the wait this ticket joined is over
                return GateState(True, _joined(ended, now - ticket.since))
            if self._since is None:
                cpu, loads = t._sample(s.check_interval)
                reason = t._reason(cpu, loads[1])
                if not reason:
                    return GateState(True, ThrottleResult(0.0, False, False, cpu, loads[1], ""))
                self._since, self._reason = now, reason
                self.waits += 1
                logger.info("throttling%s: %s; waiting (at most %gs)", _what(label), reason, s.max_wait_time)
            else:
                # Half the interval: a reading refreshed by another caller a moment ago is fresh enough.
                cpu, loads = t._sample(s.check_interval / 2)
                busy = t._reason(cpu, loads[1])
                if not busy:
                    return self._end(ticket, now, cpu, loads[1], False, label)
                self._reason = busy
            if now - self._since >= s.max_wait_time - 1e-9:
                return self._end(ticket, now, cpu, loads[1], True, label)
            retry = min(now + s.check_interval, self._since + s.max_wait_time)
            return GateState(False, ThrottleResult(0.0, False, False, cpu, loads[1], ""), retry)

    def _end(
        self, ticket: GateTicket, now: float, cpu: float, load: float, timed_out: bool, label: str
    ) -> GateState:
        """End the wait in progress (the caller holds the lock); every ticket that joined it is released."""
        assert self._since is not None
        waited, reason, s = now - self._since, self._reason, self._t.settings
        if timed_out:
            logger.warning(
                "throttle%s: still busy after %.2fs, MAX_WAIT_TIME (%gs) reached, proceeding anyway: %s",
                _what(label),
                waited,
                s.max_wait_time,
                reason,
            )
        else:
            logger.info(
                "throttle%s: resuming after %.2fs (CPU %.1f%%, load %.2f)", _what(label), waited, cpu, load
            )
        result = ThrottleResult(waited, True, timed_out, cpu, load, reason)
        self._ended[self._generation] = result
        self._ended.pop(self._generation - self._KEEP, None)
        self._generation += 1
        self._since = None
        return GateState(True, _joined(result, now - ticket.since))


def _what(label: str) -> str:
    return f" {label}" if label else ""


def _joined(result: ThrottleResult, waited: float) -> ThrottleResult:
    """The result of a wait, as seen by a caller who joined it `waited` seconds before it ended."""
    return ThrottleResult(
        min(waited, result.waited) if waited >= 0 else 0.0,
        True,
        result.timed_out,
        result.cpu,
        result.load,
        result.reason,
    )
