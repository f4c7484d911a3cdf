"""Tests for the CPU throttler: deterministic tests with injected readers and clock, and one real test."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import FrozenInstanceError

import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.runtime.throttle import (
    CpuSampler,
    ThrottleConfigError,
    Throttler,
    ThrottleResult,
    ThrottleSettings,
    load_settings,
)
from mlops_nocode.spec import load_text
from tests.conftest import PLAYBOOKS
from tests.cpuload import burning

ENV_NAMES = [
    "CPU_THRESHOLD",
    "LOAD_AVG_THRESHOLD",
    "CHECK_INTERVAL",
    "MAX_WAIT_TIME",
    "THROTTLE_DISABLE",
    "LOG_LEVEL",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    yield
    logging.getLogger("mlops.throttle").setLevel(logging.NOTSET)


class FakeClock:
    """A monotonic clock that only moves when `sleep` is called (or `advance`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Reader:
    """A reader whose value is a function of the fake clock; counts its calls."""

    def __init__(self, clock: FakeClock, value: Callable[[float], float]) -> None:
        self.clock, self.value, self.calls = clock, value, 0

    def cpu(self) -> float:
        self.calls += 1
        return self.value(self.clock.now - 1000.0)

    def load(self) -> tuple[float, float, float]:
        self.calls += 1
        five = self.value(self.clock.now - 1000.0)
        return (99.0, five, 99.0)  # only the 5-minute average counts


def make(
    clock: FakeClock, cpu: Callable[[float], float], load: Callable[[float], float], **settings: float | bool
) -> tuple[Throttler, Reader, Reader]:
    cpu_reader, load_reader = Reader(clock, cpu), Reader(clock, load)
    values: dict[str, float | bool] = {"check_interval": 0.1, "max_wait_time": 5.0, **settings}
    throttler = Throttler(
        ThrottleSettings(**values),  # type: ignore[arg-type]
        cpu_reader=cpu_reader.cpu,
        load_reader=load_reader.load,
        clock=clock,
        sleep=clock.sleep,
    )
    clock.advance(0.1)  # past the first CHECK_INTERVAL: the next call takes a real reading
    return throttler, cpu_reader, load_reader


def test_no_wait_below_thresholds() -> None:
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 50.0, load=lambda t: 2.0)
    result = throttler.wait("step")
    assert (result.waited, result.throttled, result.timed_out, result.reason) == (0.0, False, False, "")
    assert (result.cpu, result.load) == (50.0, 2.0)
    assert clock.sleeps == []


def test_fast_path_reuses_cached_reading_until_check_interval() -> None:
    clock = FakeClock()
    throttler, cpu, load = make(clock, cpu=lambda t: 10.0, load=lambda t: 1.0)
    assert cpu.calls == 1 and load.calls == 1  # primed at construction
    for _ in range(1000):
        throttler.wait()
    assert cpu.calls == 2  # one refresh, then the cached reading
    clock.advance(0.05)
    throttler.wait()
    assert cpu.calls == 2  # less than CHECK_INTERVAL since the refresh
    clock.advance(0.05)
    throttler.wait()
    assert cpu.calls == 3 and load.calls == 3
    assert clock.sleeps == []


def test_priming_reading_is_discarded_and_cpu_counts_as_zero_until_first_reading() -> None:
    clock = FakeClock()
    throttler = Throttler(
        ThrottleSettings(check_interval=0.1, max_wait_time=1.0),
        cpu_reader=lambda: 100.0,
        load_reader=lambda: (0.0, 0.0, 0.0),
        clock=clock,
        sleep=clock.sleep,
    )
    first = throttler.wait()  # same instant as construction: no reading yet, never blocks to measure
    assert not first.throttled and first.cpu == 0.0 and clock.sleeps == []
    throttler.warm_up()
    assert clock.sleeps == [pytest.approx(0.1)]
    assert throttler.status().cpu == 100.0


def test_waits_until_cpu_drops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlops.throttle")
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 97.0 if t < 1.0 else 20.0, load=lambda t: 1.0)
    result = throttler.wait("train/fit")
    assert result.throttled and not result.timed_out
    assert 0.85 <= result.waited <= 1.0
    assert result.cpu == 20.0
    assert "CPU 97.0% > CPU_THRESHOLD 90%" in result.reason
    assert all(s == pytest.approx(0.1) for s in clock.sleeps)
    messages = [r.getMessage() for r in caplog.records]
    assert any("throttling train/fit" in m and "97.0%" in m for m in messages)
    assert any("resuming after" in m for m in messages)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_load_threshold_triggers() -> None:
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 5.0, load=lambda t: 8.0 if t < 0.5 else 2.0)
    result = throttler.wait()
    assert result.throttled and not result.timed_out
    assert 0.35 <= result.waited <= 0.5
    assert "load average (5 min) 8.00 > LOAD_AVG_THRESHOLD 6" in result.reason
    assert result.load == 2.0


def test_max_wait_time_reached_proceeds_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlops.throttle")
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 99.0, load=lambda t: 1.0, max_wait_time=1.0)
    result = throttler.wait("slow")
    assert result.throttled and result.timed_out
    assert result.waited == pytest.approx(1.0)
    assert sum(clock.sleeps) == pytest.approx(1.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "MAX_WAIT_TIME" in warnings[0].getMessage() and "proceeding anyway" in warnings[0].getMessage()
    assert warnings[0].name == "mlops.throttle"


def test_disabled_never_touches_readers_or_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> object:
        raise AssertionError("measured while disabled")

    monkeypatch.setattr(psutil, "cpu_times", boom)
    monkeypatch.setattr(os, "getloadavg", boom)
    monkeypatch.setenv("THROTTLE_DISABLE", "true")
    throttler = Throttler.from_env()
    result = throttler.wait()
    assert (result.waited, result.throttled, result.timed_out, result.reason) == (
        0.0,
        False,
        False,
        "disabled",
    )


def test_status_reports_readings_and_decision() -> None:
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 95.0, load=lambda t: 7.0)
    st = throttler.status()
    assert (st.cpu, st.load1, st.load5, st.load15) == (95.0, 99.0, 7.0, 99.0)
    assert (st.cpu_threshold, st.load_avg_threshold) == (90.0, 6.0)
    assert st.would_wait and not st.disabled
    assert "CPU 95.0%" in st.reason and "load average" in st.reason
    assert clock.sleeps == []  # status never waits

    clock = FakeClock()
    disabled, _, _ = make(clock, cpu=lambda t: 95.0, load=lambda t: 7.0, throttle_disable=True)
    st = disabled.status()
    assert st.disabled and not st.would_wait and st.reason == "disabled"


def test_result_is_frozen() -> None:
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 1.0, load=lambda t: 1.0)
    result = throttler.wait()
    with pytest.raises(FrozenInstanceError):
        result.waited = 3.0  # type: ignore[misc]


def test_env_defaults() -> None:
    s = load_settings()
    assert (s.cpu_threshold, s.load_avg_threshold, s.check_interval, s.max_wait_time) == (90.0, 6.0, 0.1, 5.0)
    assert (s.throttle_disable, s.log_level) == (False, "INFO")


def test_env_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CPU_THRESHOLD": "75.5",
        "LOAD_AVG_THRESHOLD": "3",
        "CHECK_INTERVAL": "0.25",
        "MAX_WAIT_TIME": "12",
        "THROTTLE_DISABLE": "1",
        "LOG_LEVEL": "debug",
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings()
    assert (s.cpu_threshold, s.load_avg_threshold, s.check_interval, s.max_wait_time) == (
        75.5,
        3.0,
        0.25,
        12.0,
    )
    assert (s.throttle_disable, s.log_level) == (True, "DEBUG")
    Throttler(s)
    assert logging.getLogger("mlops.throttle").level == logging.DEBUG


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CPU_THRESHOLD", "abc"),
        ("CPU_THRESHOLD", "-5"),
        ("CPU_THRESHOLD", "nan"),
        ("LOAD_AVG_THRESHOLD", "-1"),
        ("CHECK_INTERVAL", "0"),
        ("MAX_WAIT_TIME", "soon"),
        ("THROTTLE_DISABLE", "maybe"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ThrottleConfigError, match=f"{name}='{value}'"):
        load_settings()
    with pytest.raises(ThrottleConfigError, match=name):
        Throttler.from_env()


def test_cpu_sampler_percent_since_previous_call(monkeypatch: pytest.MonkeyPatch) -> None:
    Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")
    samples = iter(
        [
            Times(10.0, 0.0, 5.0, 80.0, 5.0, 0.0, 0.0),
            # +6 busy (user includes 2 of guest, not counted twice), +3 idle, +1 iowait: 60% busy
            Times(16.0, 0.0, 5.0, 83.0, 6.0, 2.0, 0.0),
            Times(16.0, 0.0, 5.0, 83.0, 6.0, 2.0, 0.0),  # no time passed
        ]
    )
    monkeypatch.setattr(psutil, "cpu_times", lambda: next(samples))
    sampler = CpuSampler()
    assert sampler() == 0.0  # the meaningless priming call
    assert sampler() == pytest.approx(60.0)
    assert sampler() == 0.0


def test_default_readers_give_sane_values() -> None:
    throttler = Throttler(ThrottleSettings(check_interval=0.05, cpu_threshold=100.1, load_avg_threshold=1e6))
    throttler.warm_up()
    st = throttler.status()
    assert 0.0 <= st.cpu <= 100.0
    assert min(st.load1, st.load5, st.load15) >= 0.0


def test_thread_safety_smoke() -> None:
    """Many threads share one throttler on the real clock: busy for 0.3 s, then idle."""
    start = time.monotonic()
    in_reader = threading.Lock()
    overlaps: list[int] = []
    refreshes: list[float] = []

    def cpu() -> float:
        if not in_reader.acquire(blocking=False):
            overlaps.append(1)
            return 0.0
        try:
            refreshes.append(time.monotonic())
            return 95.0 if time.monotonic() - start < 0.3 else 10.0
        finally:
            in_reader.release()

    interval = 0.02
    throttler = Throttler(
        ThrottleSettings(check_interval=interval, max_wait_time=3.0),
        cpu_reader=cpu,
        load_reader=lambda: (0.0, 0.0, 0.0),
    )
    throttler.warm_up()  # a real reading first (it blocks at most one CHECK_INTERVAL)
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(200):
                results.append(throttler.wait("w"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and not overlaps
    assert len(results) == 16 * 200
    assert any(r.throttled for r in results)  # type: ignore[attr-defined]
    assert not any(r.timed_out for r in results)  # type: ignore[attr-defined]
    gaps = [b - a for a, b in itertools.pairwise(refreshes)]
    assert all(g >= interval / 2 - 1e-3 for g in gaps)  # refreshed at most once per half CHECK_INTERVAL


def test_real_cpu_burners_make_it_wait() -> None:
    """Burn every core with real processes: the throttler must wait MAX_WAIT_TIME, then not wait once idle."""
    with burning() as burners:
        throttler = Throttler(
            ThrottleSettings(
                cpu_threshold=50.0, load_avg_threshold=1000.0, check_interval=0.1, max_wait_time=1.0
            )
        )
        throttler.warm_up()
        assert throttler.status().cpu > 50.0
        result = throttler.wait("real")
        assert result.throttled and result.timed_out
        assert result.waited >= 1.0 - 1e-6  # MAX_WAIT_TIME (no upper bound: that would be a timing threshold)
        assert result.cpu > 50.0
    assert all(p.poll() is not None for p in burners)
    idle = Throttler(ThrottleSettings(cpu_threshold=100.1, load_avg_threshold=1000.0, check_interval=0.1))
    idle.warm_up()
    result = idle.wait("real")
    assert not result.throttled and result.waited == 0.0


def test_callers_waiting_at_the_same_time_share_one_wait() -> None:
    """The gate: a caller that joins a wait in progress is released with it, not after a wait of its own."""
    clock = FakeClock()
    throttler, _, _ = make(clock, cpu=lambda t: 99.0, load=lambda t: 1.0, max_wait_time=1.0)
    gate = throttler.gate()
    first = gate.enter()
    assert not gate.poll(first, "a").open  # starts the wait
    clock.advance(0.6)
    second = gate.enter()
    state = gate.poll(second, "b")
    assert not state.open and state.retry_at == pytest.approx(clock.now + 0.1)
    clock.advance(0.4)  # MAX_WAIT_TIME since the wait began
    ended = gate.poll(first, "a")
    assert ended.open and ended.result.timed_out and ended.result.waited == pytest.approx(1.0)
    joined = gate.poll(second, "b")
    assert joined.open and joined.result.timed_out and joined.result.waited == pytest.approx(0.4)
    assert gate.waits == 1
    late = gate.enter()  # after the wait ended: still busy, so a new wait
    assert not gate.poll(late).open and gate.waits == 2


def test_threads_waiting_under_real_load_share_one_wait() -> None:
    settings = ThrottleSettings(cpu_threshold=50.0, load_avg_threshold=1000.0, max_wait_time=1.0)
    results: list[ThrottleResult] = []
    with burning():
        throttler = Throttler(settings)
        throttler.warm_up()
        threads = [threading.Thread(target=lambda: results.append(throttler.wait("t"))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(results) == 8 and all(r.throttled for r in results)
    assert throttler.gate().waits == 1


def test_parallel_steps_under_real_load_share_one_wait() -> None:
    """Eight steps ready at once on a busy machine: one wait of the run's gate lets them all through (they
    used to wait one after another, MAX_WAIT_TIME each), and one `throttle` event says so."""
    n = 8
    steps = "\n".join(f"    - {{id: s{i}, uses: playbook/add, with: {{n: {i}}}}}" for i in range(n))
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: wide, version: 1.0.0}}
spec:
  steps:
{steps}
"""
    plan = compile_plan("pipeline/wide", Index(load_text(PLAYBOOKS) + load_text(spec)))
    events: list[Event] = []
    settings = ThrottleSettings(cpu_threshold=50.0, load_avg_threshold=1000.0, max_wait_time=1.0)
    with burning():
        throttler = Throttler(settings)
        throttler.warm_up()
        assert throttler.status().would_wait
        result = Runner(plan, sink=events.append, throttle=throttler, max_parallel=n, use_cache=False).run()
    assert result.status == "succeeded"
    waits = [e for e in events if e.type == "throttle"]
    assert len(waits) == 1, [e.data for e in waits]
    assert waits[0].step is None and waits[0].data["count"] == n
    assert sorted(waits[0].data["steps"]) == sorted(f"s{i}" for i in range(n))
    assert "CPU" in waits[0].data["reason"]
    assert throttler.gate().waits == 1


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.setenv(name, "")
    s = load_settings()
    assert (s.throttle_disable, s.cpu_threshold, s.max_wait_time, s.log_level) == (False, 90.0, 5.0, "INFO")
