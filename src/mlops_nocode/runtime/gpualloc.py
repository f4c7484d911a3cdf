"""Whole GPUs handed to running steps: each step that asks for `gpu: N` gets N devices of its own.

A device is held by an exclusive `flock` on `<MLOPS_HOME>/gpus/<uuid>.lock` while a step uses it, so
two Runners on one machine (two runs, the gateway's workers) never hand out the same device either; the
kernel drops the lock when its holder dies, so a crashed Runner never leaves a device taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.gpus import Gpu, gpu_matches
from mlops_nocode.spec.values import memory_bytes

__all__ = ["GpuNeed", "GpuPool", "need_of"]


@dataclass(frozen=True, slots=True)
class GpuNeed:
    """What one step asks for: `count` whole devices, each of `gpu_type` (if set) with at least
    `memory_gib` GiB (if set)."""

    count: int
    gpu_type: str = ""
    memory_gib: float = 0.0

    def fits(self, g: Gpu) -> bool:
        return (
            not self.gpu_type or gpu_matches(g.gpu_type, self.gpu_type)
        ) and g.memory_gib >= self.memory_gib

    def text(self) -> str:
        kind = f" {self.gpu_type}" if self.gpu_type else ""
        mem = f" with {self.memory_gib:g}Gi" if self.memory_gib else ""
        return f"{self.count} GPU{'s' if self.count != 1 else ''}{kind}{mem}"


def need_of(resources: Mapping[str, Any]) -> GpuNeed:
    """A plan step's GPU need (ValueError when its resources say it wrongly: plan files are untrusted)."""
    count = resources.get("gpu", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
        raise ValueError(f"resources.gpu {str(count)[:40]!r} is not a whole number of GPUs")
    kind = resources.get("gpu_type") or ""
    if not isinstance(kind, str) or len(kind) > 64:
        raise ValueError(f"resources.gpu_type {str(kind)[:40]!r} is not a GPU model name")
    mem = resources.get("gpu_memory")
    try:
        gib = memory_bytes(str(mem)[:40]) / 2**30 if mem else 0.0
    except ValueError:
        raise ValueError(f"resources.gpu_memory {str(mem)[:40]!r} is not a memory such as 24Gi") from None
    return GpuNeed(count, kind, gib)


class GpuPool:
    """The devices one Runner may hand out, and which attempt holds which."""

    def __init__(self, gpus: Sequence[Gpu], reason: str, lock_dir: Path) -> None:
        self.gpus = tuple(gpus)
        self.reason = reason
        self.lock_dir = lock_dir
        self._held: dict[str, tuple[Gpu, ...]] = {}
        self._fds: dict[str, int] = {}  # device UUID -> its lock file, opened once (-1: none to be had)

    def never(self, need: GpuNeed) -> str | None:
        """Why `need` can never be met here (None when it can, once devices are free)."""
        fitting = [g for g in self.gpus if need.fits(g)]
        if len(fitting) >= need.count:
            return None
        have = ", ".join(f"{g.index}: {g.gpu_type} {g.memory_gib}Gi" for g in self.gpus)
        what = f"needs {need.text()}; this machine has "
        if not self.gpus:
            return what + f"no GPU ({self.reason or 'NVML lists none'})"
        return what + f"{len(fitting)} that fit{'s' if len(fitting) == 1 else ''} (its GPUs: {have})"

    def take(self, job: str, need: GpuNeed) -> tuple[Gpu, ...] | None:
        """`need.count` free fitting devices for `job` (smallest memory first), or None when not enough
        are free now (nothing is held then)."""
        if need.count == 0:
            return ()
        busy = {g.uuid for held in self._held.values() for g in held}
        got: list[Gpu] = []
        for g in sorted((g for g in self.gpus if need.fits(g)), key=lambda g: (g.memory_total_mib, g.index)):
            if len(got) == need.count:
                break
            if g.uuid not in busy and self._lock(g):
                got.append(g)
        if len(got) < need.count:
            for g in got:
                self._unlock(g)
            return None
        self._held[job] = tuple(got)
        return tuple(got)

    def _fd(self, g: Gpu) -> int:
        fd = self._fds.get(g.uuid)
        if fd is None:
            name = hashlib.sha256(g.uuid.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            try:
                self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                fd = -1  # an unwritable MLOPS_HOME: only this Runner's own steps are kept apart
            self._fds[g.uuid] = fd
        return fd

    def _lock(self, g: Gpu) -> bool:
        """Take the device's machine-wide lock; False when another Runner of this machine holds it."""
        fd = self._fd(g)
        if fd < 0:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(self, g: Gpu) -> None:
        fd = self._fds.get(g.uuid, -1)
        if fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)

    def release(self, job: str) -> tuple[Gpu, ...]:
        """Free what `job` holds (nothing when it holds nothing); returns the devices freed."""
        held = self._held.pop(job, ())
        for g in held:
            self._unlock(g)
        return held

    def release_all(self) -> None:
        """Free every device and close the lock files (the pool is done)."""
        for job in list(self._held):
            self.release(job)
        for fd in self._fds.values():
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fds.clear()

    def holders(self) -> dict[str, tuple[Gpu, ...]]:
        return dict(self._held)
