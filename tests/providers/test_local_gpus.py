"""The local target counts this machine's NVIDIA GPUs from their device files (serve-llm asks for one)."""

from __future__ import annotations

from pathlib import Path


def test_local_counts_nvidia_gpus_from_their_device_files(tmp_path: Path) -> None:
    from mlops_nocode.providers.local import nvidia_gpus

    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-caps", "null"):
        (tmp_path / name).touch()
    assert nvidia_gpus(str(tmp_path)) == 2
    assert nvidia_gpus(str(tmp_path / "missing")) == 0
