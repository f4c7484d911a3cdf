"""This machine's NVIDIA GPUs, read through NVML (`nvidia-ml-py`, imported as `pynvml`).

No NVML (no driver, no library, no package) means no GPUs, with the reason in words: never an error
(a machine without any sign of an NVIDIA driver does not even import `pynvml`: DRIVER_SIGNS).
`pynvml` is imported when asked for (tests put a fake NVML in `sys.modules`), and a discovery is kept
for DISCOVERY_TTL seconds: placement asks for it once per step kind, the first `nvmlInit` can be slow.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

__all__ = [
    "DISCOVERY_TTL",
    "Gpu",
    "GpuReport",
    "Nvml",
    "device_gib",
    "discover",
    "gpu_matches",
    "normalise",
]

DISCOVERY_TTL = 10.0
_VENDOR = re.compile(r"^(nvidia|tesla|geforce|quadro)$", re.IGNORECASE)
_FORM = re.compile(r"^(sxm\d*|hbm\d*e?)$", re.IGNORECASE)  # SXM boards (HBM3 H100s are SXM)
_DROP = re.compile(r"^(pcie|nvl|mig|\d+g\.\d+gb)$", re.IGNORECASE)
_MEMORY = re.compile(r"^\d+gb$", re.IGNORECASE)
_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,127}$")  # GPU-8f6a..., MIG-GPU-.../1/0


def normalise(name: str) -> str:
    """An NVML model name as the price sheets write gpu_type: `NVIDIA A100-SXM4-80GB` -> `A100-80GB-SXM`,
    `NVIDIA H100 PCIe` -> `H100`, `NVIDIA GeForce RTX 4090` -> `RTX-4090`, `NVIDIA H200` -> `H200`."""
    tokens = [t for t in re.split(r"[\s_-]+", name.strip()) if t]
    model, memory, sxm = [], [], False
    for t in tokens:
        if _VENDOR.match(t) or _DROP.match(t):
            continue
        if _FORM.match(t):
            sxm = True
        elif _MEMORY.match(t):
            memory.append(t.upper())
        else:
            model.append(t.upper())
    return "-".join(model + memory + (["SXM"] if sxm and model else [])) or name.strip()[:64]


def gpu_matches(have: str, want: str) -> bool:
    """`want` names `have`: equal, or a prefix ending where `have` has a '-' (A100 ⊂ A100-80GB, never
    A10 ⊂ A100); case, spaces, '_' and '-' ignored in the comparison (RTX4090 = RTX-4090)."""
    h = re.sub(r"[\s_]+", "-", have.strip().lower())
    w = re.sub(r"[\s_-]+", "", want.strip().lower())
    if not h or not w:
        return False
    cuts = [i for i, c in enumerate(h) if c == "-"] + [len(h)]
    return any(h[:i].replace("-", "") == w for i in cuts)


def device_gib(memory_total_mib: int) -> int:
    """A device's memory in whole GiB as vendors name it (NVML's total is a little under: 24564 MiB is a
    24 GB RTX 4090, 81559 MiB an 80 GB H100): what `resources.gpu_memory` is compared with."""
    return round(memory_total_mib / 1024)


@dataclass(frozen=True, slots=True)
class Gpu:
    """One device as NVML lists it now."""

    index: int
    uuid: str
    name: str  # NVML's own, e.g. "NVIDIA A100-SXM4-80GB"
    gpu_type: str  # normalised like the price sheets', e.g. "A100-80GB-SXM"
    memory_total_mib: int
    memory_free_mib: int
    utilization_pct: int | None  # None when the device does not say
    driver: str
    memory_gib: int = field(init=False)  # the total in whole GiB (device_gib)

    def __post_init__(self) -> None:
        object.__setattr__(self, "memory_gib", device_gib(self.memory_total_mib))

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "uuid": self.uuid,
            "name": self.name,
            "gpu_type": self.gpu_type,
            "memory_total_mib": self.memory_total_mib,
            "memory_free_mib": self.memory_free_mib,
            "memory_gib": self.memory_gib,
            "utilization_pct": self.utilization_pct,
            "driver": self.driver,
        }


@dataclass(frozen=True, slots=True)
class GpuReport:
    """The GPUs this process may use, or why there are none (`reason`, "" when there are some)."""

    gpus: tuple[Gpu, ...]
    reason: str = ""
    driver: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"gpus": [g.to_json() for g in self.gpus], "reason": self.reason, "driver": self.driver}


DRIVER_SIGNS = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/proc/driver/nvidia")
"""What an NVIDIA driver leaves on a machine (`/dev/dxg`: WSL2); with none of them, `pynvml` (slow to
import: ctypes) is not even imported, unless it already is."""


def _module() -> ModuleType | str:
    loaded = sys.modules.get("pynvml")
    if loaded is not None:
        return loaded
    if not any(os.path.exists(p) for p in DRIVER_SIGNS):
        return f"no NVIDIA driver: none of {', '.join(DRIVER_SIGNS)} exists, so no NVML (libnvidia-ml.so.1)"
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return "nvidia-ml-py is not installed (pip install nvidia-ml-py), so NVML cannot be asked"


class Nvml:
    """One NVML session (`with Nvml() as n:`); `n.reason` says why there is none ("" when open)."""

    def __init__(self) -> None:
        self.reason = ""
        self._nv: Any = None

    def __enter__(self) -> Nvml:
        nv = _module()
        if isinstance(nv, str):
            self.reason = nv
            return self
        try:
            nv.nvmlInit()
        except Exception as e:  # NVMLError and its kinds; a broken library may raise anything here
            self.reason = _why_no_nvml(nv, e)
            return self
        self._nv = nv
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        nv, self._nv = self._nv, None
        if nv is not None:
            with contextlib.suppress(Exception):  # shutting down: nothing left to do about it
                nv.nvmlShutdown()

    @property
    def open(self) -> bool:
        return self._nv is not None

    def devices(self) -> list[Gpu]:
        """Every device NVML lists (a device that cannot be read is left out)."""
        nv = self._nv
        if nv is None:
            return []
        try:
            driver = str(nv.nvmlSystemGetDriverVersion())
            count = int(nv.nvmlDeviceGetCount())
        except Exception as e:
            self.reason = f"NVML cannot list the devices: {_text(e)}"
            return []
        out = []
        for i in range(min(count, 1024)):
            try:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                name = str(nv.nvmlDeviceGetName(h))[:128]
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                uuid = str(nv.nvmlDeviceGetUUID(h))
            except Exception:  # a lost device is not one to schedule on
                continue
            if not _UUID.match(uuid):
                continue  # it goes into CUDA_VISIBLE_DEVICES and engine arguments: nothing else fits there
            util = self._utilization(h)
            total, free = int(mem.total) // 2**20, int(mem.free) // 2**20
            out.append(Gpu(i, uuid, name, normalise(name), total, free, util, driver))
        return out

    def _utilization(self, handle: Any) -> int | None:
        try:
            return int(self._nv.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:
            return None

    def sample(self, indexes: Iterable[int]) -> dict[int, tuple[int | None, int]]:
        """Utilisation % and memory used (MiB) of these devices now, by index (unreadable: left out)."""
        nv, out = self._nv, {}
        if nv is None:
            return {}
        for i in indexes:
            try:
                h = nv.nvmlDeviceGetHandleByIndex(i)
                used = int(nv.nvmlDeviceGetMemoryInfo(h).used) // 2**20
            except Exception:
                continue
            out[i] = (self._utilization(h), used)
        return out


def _text(e: BaseException) -> str:
    return (str(e) or type(e).__name__)[:200]


def _why_no_nvml(nv: ModuleType, e: BaseException) -> str:
    value = getattr(e, "value", None)
    if value == getattr(nv, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
        return "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not found"
    if value == getattr(nv, "NVML_ERROR_DRIVER_NOT_LOADED", object()):
        return "the NVIDIA driver is not loaded"
    return f"NVML cannot start: {_text(e)}"


def visible(gpus: Sequence[Gpu], setting: str | None) -> tuple[tuple[Gpu, ...], str]:
    """The devices CUDA_VISIBLE_DEVICES (`setting`, None when unset) leaves this process, with the reason
    when it leaves none. Entries are indexes or UUIDs (a UUID prefix is enough, as for CUDA)."""
    if setting is None:
        return tuple(gpus), ""
    kept: list[Gpu] = []
    for entry in (e.strip() for e in setting.split(",")):
        if not entry or entry == "-1":
            break  # CUDA stops at the first entry that names no device
        found = next(
            (g for g in gpus if (entry.isdigit() and g.index == int(entry)) or g.uuid.startswith(entry)), None
        )
        if found is None:
            break
        if found not in kept:
            kept.append(found)
    if kept or not gpus:
        return tuple(kept), ""
    return (), f"CUDA_VISIBLE_DEVICES={setting[:60]!r} leaves this process none of the {len(gpus)} GPU(s)"


_lock = threading.Lock()
_cache: dict[tuple[int | str, str | None], tuple[float, GpuReport]] = {}


def discover(cuda_visible: str | None = None, *, fresh: bool = False) -> GpuReport:
    """The GPUs of this machine that a process with CUDA_VISIBLE_DEVICES=`cuda_visible` may use (None: the
    variable is unset); kept DISCOVERY_TTL seconds unless `fresh`."""
    nv = _module()
    key = (nv if isinstance(nv, str) else id(nv), cuda_visible)  # a reason by value (ids are reused)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit is not None and not fresh and now - hit[0] < DISCOVERY_TTL:
            return hit[1]
    with Nvml() as session:
        found = session.devices()
        reason = session.reason
    if not found and not reason:
        reason = "NVML lists no GPU"
    gpus, hidden = visible(found, cuda_visible)
    report = GpuReport(gpus, reason or hidden, found[0].driver if found else "")
    with _lock:
        _cache[key] = (time.monotonic(), report)
    return report
