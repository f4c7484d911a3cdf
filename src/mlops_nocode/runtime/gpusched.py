"""GPU scheduling in the Runner: devices handed to steps, steps queued until theirs are free, and the
devices' utilisation and memory reported as the steps' metrics (docs/GPU.md).

Only runs with a step that asks for GPUs ask NVML anything. In such a run:
- a step with `gpu: N` starts when N fitting devices are free (a `step.waiting` event says why it waits)
  and sees only them: CUDA_VISIBLE_DEVICES=<their UUIDs> (CUDA_DEVICE_ORDER=PCI_BUS_ID);
- a step with `gpu: 0` gets CUDA_VISIBLE_DEVICES="" (it cannot touch the devices of the others);
- a step whose need no device of this machine can ever meet fails at once, with the reason;
- on a machine where NVML lists no GPU, nothing is handed out: steps run as before (a plan placed on a
  GPU offer run here as a stand-in; `local` refuses GPU steps at plan time already).
Steps handed to another scheduler (container steps placed on k3s: Kubernetes gives their pods GPUs;
steps placed on Ray) and `serve` steps (a service outlives its step) are left alone. Devices are
released when the attempt ends, whatever the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime import attempt as att
from mlops_nocode.runtime.gpualloc import GpuNeed, GpuPool, need_of
from mlops_nocode.runtime.gpus import Gpu, Nvml, discover
from mlops_nocode.runtime.state import StepState

ELSEWHERE = frozenset({"k3s", "ray"})  # providers whose own scheduler hands out GPUs
RETRY_EVERY = 0.5  # seconds: how often a waiting step asks again for devices another run may free


class GpuSettings(BaseSettings):
    """GPU scheduling settings (environment variables of the same name in upper case)."""

    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", env_ignore_empty=True
    )

    gpu_sample_interval: float = Field(
        5.0, gt=0, le=3600, allow_inf_nan=False, description="seconds between NVML samples of a step's GPUs"
    )


def scheduled_here(step: PlanStep) -> bool:
    """Whether this Runner hands out the step's devices: not Kubernetes' or Ray's scheduler, and not for a
    `serve` step (its service outlives the attempt: it keeps seeing every device, as before)."""
    provider = str((step.placement or {}).get("provider") or (step.target or {}).get("provider") or "")
    if step.runtime == "serve":
        return False
    return not (provider in ELSEWHERE and (step.runtime == "container" or provider == "ray"))


class GpuScheduling:
    """Mixed into the Runner, whose attributes these are."""

    home: Path
    environ: dict[str, str]
    elsewhere: frozenset[str]
    states: dict[str, StepState]
    _own: tuple[PlanStep, ...]
    _gpu_pool: GpuPool | None = None
    _gpu_nvml: Nvml | None = None
    _gpu_waiting: dict[str, GpuNeed]  # in the order they started waiting
    _gpu_stats: dict[str, list[float]]  # step id -> [samples, max util, max memory]
    _gpu_every: float = 5.0
    _gpu_sampled_at: float = 0.0
    _gpu_note: str = ""
    _gpu_epoch: int = 0  # devices released so far: a waiting step tries again when it changes
    _gpu_tried: dict[str, tuple[int, float]]  # waiting step -> (epoch, time) of its last try

    if TYPE_CHECKING:

        def emit(self, type_: str, step: str | None = None, **data: Any) -> None: ...

    def _gpu_setup(self) -> None:
        """At the run's start: the devices this Runner may hand out, when one of its steps asks for any."""
        self._gpu_waiting, self._gpu_stats, self._gpu_tried = {}, {}, {}
        wanted = [s for s in self._own if s.id not in self.elsewhere and scheduled_here(s) and _count(s) > 0]
        if not wanted:
            return
        report = discover(self.environ.get("CUDA_VISIBLE_DEVICES"), fresh=True)
        self._gpu_pool = GpuPool(report.gpus, report.reason, self.home / "gpus")
        if report.gpus:
            try:
                self._gpu_every = GpuSettings().gpu_sample_interval
            except ValidationError as e:  # said in the GPU steps' logs; never a failed run
                self._gpu_note = f"GPU_SAMPLE_INTERVAL is invalid ({e.errors()[0]['msg']}): sampling every 5s"
            self._gpu_nvml = Nvml().__enter__()

    def _gpu_need(self, step: PlanStep) -> GpuNeed | None:
        if self._gpu_pool is None or step.id in self.elsewhere or not scheduled_here(step):
            return None
        try:
            need = need_of(step.resources)
        except ValueError:
            return None  # the attempt fails with the reason (`_gpu_env`)
        return need if need.count else None

    def _gpu_ready(self, sid: str) -> bool:
        """Whether step `sid` may start now as far as GPUs go; takes its devices when it may. Steps wait in
        turn: none takes a device that a step waiting since before it could use (no starvation of a step
        that needs several)."""
        pool = self._gpu_pool
        if pool is None:
            return True
        now, tried = time.monotonic(), self._gpu_tried.get(sid)
        if tried is not None and tried[0] == self._gpu_epoch and now - tried[1] < RETRY_EVERY:
            return False  # nothing was released since its last try (devices of other runs: asked again)
        need = self._gpu_need(self.states[sid].step)
        if need is None or sid in pool.holders() or pool.never(need):
            return True
        ahead = None
        for other, other_need in self._gpu_waiting.items():
            if other == sid:
                break
            if any(need.fits(g) and other_need.fits(g) for g in pool.gpus):
                ahead = other
                break
        if ahead is None and pool.take(sid, need) is not None:
            self._gpu_waiting.pop(sid, None)
            self._gpu_tried.pop(sid, None)
            return True
        self._gpu_tried[sid] = (self._gpu_epoch, now)
        if sid not in self._gpu_waiting:
            self._gpu_waiting[sid] = need
            users = sorted(s for s, gs in pool.holders().items() if any(need.fits(g) for g in gs))
            who = f"steps {', '.join(users[:10])} hold" if len(users) > 1 else f"step {''.join(users)} holds"
            held = who if users else "another run on this machine holds"
            if ahead is not None:
                held = f"step {ahead}, waiting since before, comes first for"
            self.emit("step.waiting", sid, reason=f"waits for {need.text()}: {held} the devices that fit")
        return False

    def _gpu_startable(self, ready: list[str], first: str) -> list[str]:
        """The ready steps the throttler's gate may start besides `first`: none that waits for GPUs."""
        if self._gpu_pool is None:
            return ready
        holders = self._gpu_pool.holders()
        return [r for r in ready if r == first or r in holders or self._gpu_need(self.states[r].step) is None]

    def _gpu_env(self, a: att.Attempt) -> dict[str, str]:
        """The attempt's GPU environment (its devices recorded in `a.gpus`); StepFailure when its need can
        never be met here."""
        pool = self._gpu_pool
        if pool is None or not scheduled_here(a.step):
            return {}
        try:
            need = need_of(a.step.resources)
        except ValueError as e:
            raise att.StepFailure(f"{e}: write the plan again with `mlops plan --out`") from None
        if not pool.gpus:  # nothing to hand out (a stand-in for the machine it was placed on)
            if need.count:
                line = f"no GPU handed out: this machine has none ({pool.reason or 'NVML lists none'})"
                self.emit("log", a.step.id, line=line, attempt=a.number)
            return {}
        if need.count and (never := pool.never(need)):
            raise att.StepFailure(never + ": place the step on a target that has such GPUs")
        devices = pool.holders().get(a.step.id, ())
        a.gpus = tuple(g.uuid for g in devices)
        if devices:
            text = ", ".join(f"{g.index} ({g.gpu_type}, {g.memory_gib}Gi)" for g in devices)
            self.emit("log", a.step.id, line=f"GPUs {text}", attempt=a.number)
            if self._gpu_note:
                self.emit("log", a.step.id, line=self._gpu_note, attempt=a.number)
        return {"CUDA_VISIBLE_DEVICES": ",".join(a.gpus), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

    def _gpu_tick(self) -> None:
        """Sample the held devices (every GPU_SAMPLE_INTERVAL): live `metric` events per step."""
        now = time.monotonic()
        if self._gpu_nvml is None or self._gpu_pool is None or now - self._gpu_sampled_at < self._gpu_every:
            return
        self._gpu_sampled_at = now
        for sid, devices in self._gpu_pool.holders().items():
            if self.states[sid].status != "running" or not devices:
                continue
            got = self._gpu_nvml.sample(g.index for g in devices)
            utils = [u for u, _ in got.values() if u is not None]
            if not got:
                continue
            memory = sum(m for _, m in got.values())
            stats = self._gpu_stats.setdefault(sid, [0, 0.0, 0.0])
            stats[0] += 1
            stats[2] = max(stats[2], memory)
            self.emit("metric", sid, name="gpu_memory_used_mib", value=memory, labels=_labels(devices))
            if utils:
                util = round(sum(utils) / len(utils), 1)
                stats[1] = max(stats[1], util)
                self.emit("metric", sid, name="gpu_utilization_pct", value=util, labels=_labels(devices))

    def _gpu_release(self, sid: str) -> None:
        """The attempt of `sid` ended (or never started): its devices are free; its peaks reported."""
        if self._gpu_pool is None:
            return
        devices = self._gpu_pool.release(sid)
        self._gpu_epoch += len(devices) > 0
        stats = self._gpu_stats.pop(sid, None)
        if stats and devices:
            labels = _labels(devices)
            self.emit("metric", sid, name="gpu_utilization_pct_max", value=stats[1], labels=labels)
            self.emit("metric", sid, name="gpu_memory_used_mib_max", value=stats[2], labels=labels)

    def _gpu_close(self) -> None:
        if self._gpu_pool is not None:
            self._gpu_pool.release_all()
        if self._gpu_nvml is not None:
            self._gpu_nvml.close()
            self._gpu_nvml = None


def _count(step: PlanStep) -> int:
    gpu = step.resources.get("gpu", 0) if isinstance(step.resources, dict) else 0
    return gpu if isinstance(gpu, int) and not isinstance(gpu, bool) else 1  # malformed: let it fail


def _labels(devices: tuple[Gpu, ...]) -> dict[str, str]:
    return {"gpus": ",".join(str(g.index) for g in devices), "source": "nvml"}
