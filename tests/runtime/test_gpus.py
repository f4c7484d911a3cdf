"""GPU discovery through NVML: a fake NVML with devices, and the real one of this machine (none)."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from mlops_nocode.runtime.gpualloc import GpuNeed, GpuPool, need_of
from mlops_nocode.runtime.gpus import discover, gpu_matches, normalise
from tests.gpu_support import fake_nvml, gpu


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM"),
        ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
        ("NVIDIA H100 80GB HBM3", "H100-80GB-SXM"),
        ("NVIDIA H100 PCIe", "H100"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("NVIDIA RTX A6000", "RTX-A6000"),
        ("Tesla V100-SXM2-16GB", "V100-16GB-SXM"),
        ("NVIDIA L40S", "L40S"),
    ],
)
def test_model_names_are_normalised_like_the_price_sheets(name: str, normalised: str) -> None:
    assert normalise(name) == normalised


def test_gpu_types_match_by_prefix_at_a_dash_ignoring_case_and_separators() -> None:
    assert gpu_matches("A100-80GB-SXM", "a100") and gpu_matches("A100-80GB-SXM", "A100-80GB")
    assert gpu_matches("RTX-4090", "RTX4090") and gpu_matches("RTX4090", "rtx 4090")
    assert not gpu_matches("A100-80GB", "A10") and not gpu_matches("H100", "H100-80GB")
    assert not gpu_matches("", "A100") and not gpu_matches("A100", "")


def test_discovery_lists_devices_and_skips_lost_or_unsafe_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [
        gpu(0, util=37, used_mib=1024),
        gpu(1, "NVIDIA GeForce RTX 4090", 24564),
        gpu(2, lost=True),
        {**gpu(3), "uuid": "GPU-1,$(reboot)"},  # never into CUDA_VISIBLE_DEVICES or an engine's argv
    ]
    nv = fake_nvml(monkeypatch, devices, driver="550.54.15")
    report = discover(fresh=True)
    assert report.reason == "" and report.driver == "550.54.15"
    a, b = report.gpus
    assert (a.index, a.gpu_type, a.memory_gib, a.memory_free_mib, a.utilization_pct) == (
        0,
        "A100-80GB-SXM",
        80,
        80896,
        37,
    )
    assert (b.index, b.gpu_type, b.memory_gib, b.name) == (1, "RTX-4090", 24, "NVIDIA GeForce RTX 4090")
    assert a.to_json()["uuid"] == devices[0]["uuid"]
    assert nv.CALLS == ["init", "shutdown"]
    assert discover() is report and nv.CALLS == ["init", "shutdown"]  # kept a while: NVML asked once


def test_cuda_visible_devices_limits_what_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [gpu(0), gpu(1), gpu(2)]
    fake_nvml(monkeypatch, devices)
    assert [g.index for g in discover("2,0", fresh=True).gpus] == [2, 0]
    assert [g.index for g in discover(devices[1]["uuid"][:12], fresh=True).gpus] == [1]
    none = discover("", fresh=True)
    assert none.gpus == () and "CUDA_VISIBLE_DEVICES='' leaves this process none of the 3" in none.reason
    assert [g.index for g in discover("1,7,0", fresh=True).gpus] == [1]  # CUDA stops at a bad entry


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("library_not_found", "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not found"),
        ("driver_not_loaded", "the NVIDIA driver is not loaded"),
    ],
)
def test_no_nvml_means_no_gpus_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, error: str, reason: str
) -> None:
    fake_nvml(monkeypatch, [gpu(0)], error=error)
    report = discover(fresh=True)
    assert report.gpus == () and report.reason == reason


def test_this_machine_without_a_driver_reports_no_gpu_and_why_without_importing_nvml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)  # `import torch` (another test) imports it
    report = discover(fresh=True)  # this machine and CI have no NVIDIA driver
    assert report.gpus == () and report.reason == (
        "no NVIDIA driver: none of /dev/nvidiactl, /dev/nvidia0, /dev/dxg, /proc/driver/nvidia exists, "
        "so no NVML (libnvidia-ml.so.1)"
    )
    assert "pynvml" not in sys.modules  # its import is slow (ctypes): a machine without a driver skips it


def test_the_real_nvidia_ml_py_without_its_library_means_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.find_spec("pynvml")
    assert spec is not None and spec.loader is not None and "fakenvml" not in str(spec.origin)
    real = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", real)  # as on a machine with a driver's device files
    spec.loader.exec_module(real)
    report = discover(fresh=True)
    assert report.gpus == ()
    assert report.reason == "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not found"


def test_the_pool_hands_out_whole_devices_once_across_runners(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0), gpu(1, "NVIDIA GeForce RTX 4090", 24564), gpu(2)])
    gpus = discover(fresh=True).gpus
    one, other = GpuPool(gpus, "", tmp_path), GpuPool(gpus, "", tmp_path)  # two runs, one machine
    assert [g.index for g in one.take("a", GpuNeed(1)) or ()] == [1]  # the smallest that fits first
    assert [g.index for g in other.take("b", GpuNeed(2, "A100", 80)) or ()] == [0, 2]
    assert one.take("c", GpuNeed(1, "A100")) is None  # held by the other Runner (its flock)
    assert one.never(GpuNeed(1, "H100")) == (
        "needs 1 GPU H100; this machine has 0 that fit (its GPUs: 0: A100-80GB-SXM 80Gi, "
        "1: RTX-4090 24Gi, 2: A100-80GB-SXM 80Gi)"
    )
    assert one.never(GpuNeed(3, "A100")) is not None and one.never(GpuNeed(3)) is None
    assert [g.index for g in other.release("b")] == [0, 2] and other.release("b") == ()
    assert [g.index for g in one.take("c", GpuNeed(1, "A100")) or ()] == [0]
    one.release_all()
    for lock in tmp_path.iterdir():  # every device free again
        fd = os.open(lock, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert GpuPool((), "no NVIDIA driver", tmp_path).never(GpuNeed(1)) == (
        "needs 1 GPU; this machine has no GPU (no NVIDIA driver)"
    )


@pytest.mark.parametrize(
    "resources",
    [{"gpu": True}, {"gpu": -1}, {"gpu": 1, "gpu_memory": "lots"}, {"gpu": 1, "gpu_type": ["A100"]}],
)
def test_malformed_gpu_resources_of_a_plan_are_refused(resources: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"resources\.gpu"):
        need_of(resources)


def test_an_unwritable_lock_folder_still_keeps_this_runners_steps_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0)])
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    pool = GpuPool(discover(fresh=True).gpus, "", blocked / "gpus")
    assert pool.take("a", GpuNeed(1)) is not None and pool.take("b", GpuNeed(1)) is None
    assert len(pool.release("a")) == 1 and pool.take("b", GpuNeed(1)) is not None
