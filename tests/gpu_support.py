"""Fake GPUs for tests (this machine and CI have none): a fresh fake NVML module per use."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FAKE_DIR = Path(__file__).parent / "fixtures" / "fakenvml"


def gpu(i: int, name: str = "NVIDIA A100-SXM4-80GB", total_mib: int = 81920, **more: Any) -> dict[str, Any]:
    """One fake device: index `i`, a UUID of NVML's form."""
    return {"name": name, "uuid": f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}", "total_mib": total_mib, **more}


def fake_nvml(monkeypatch: pytest.MonkeyPatch, devices: list[dict[str, Any]], **config: Any) -> ModuleType:
    """A new fake `pynvml` with `devices`, in `sys.modules` for the rest of the test."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_DIR / "pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.delenv("FAKE_NVML", raising=False)
    spec.loader.exec_module(module)
    module.configure({"devices": devices, **config})
    monkeypatch.setitem(sys.modules, "pynvml", module)
    from mlops_nocode.runtime import gpus

    gpus._cache.clear()  # an earlier fake's answer, kept under a reused object id, is not this one's
    return module


def fake_nvml_env(tmp_path: Path, devices: list[dict[str, Any]], **config: Any) -> dict[str, str]:
    """Environment that makes a process the test starts see the fake NVML with `devices`."""
    path = tmp_path / "fake-nvml.json"
    path.write_text(json.dumps({"devices": devices, **config}))
    fixtures = str(Path(__file__).parent / "fixtures")
    return {"PYTHONPATH": f"{FAKE_DIR}:{fixtures}", "FAKE_NVML": str(path)}
