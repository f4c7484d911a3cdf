"""bench/gpu_finetune.py keeps working on a CPU at its tiny size (its figures are read by people, not
asserted): the direct training call and the Runner's finetune step both train and report."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import gpu_finetune


def test_the_tiny_benchmark_trains_directly_and_through_the_runner(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEP_SANDBOX_READ", "")  # the bench sets it for its model folder; given back after
    out = gpu_finetune.main(["--tiny", "--steps", "4", "--out", str(tmp_path / "r.json")])
    assert out["device"] == "cpu" and out["precision"] == "fp32" and out["steps"] == 4
    assert out["direct"]["tokens_per_second"] > 0 and out["runner"]["tokens_per_second"] > 0
    assert out["runner_overhead_ratio"] > 0 and (tmp_path / "r.json").is_file()
