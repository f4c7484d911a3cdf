"""bench/ray_overhead.py keeps working on a real Ray cluster on loopback (its figures are read by people,
never asserted here: no timed assertion)."""

from __future__ import annotations

import pytest

from bench import ray_overhead


def test_the_ray_bench_runs_and_prints_its_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    rows = ray_overhead.main(quick=True)
    cases = [r["case"] for r in rows]
    assert cases == [
        "chain-10 plain ray tasks",
        "chain-10 mlops runner on ray",
        "fanout-10 plain ray tasks",
        "fanout-10 mlops runner on ray",
        "fanout-10 same, default max_parallel",
        "fanout-20 x 50 ms, ideal (4 slots)",
        "fanout-20 x 50 ms, local runner",
        "fanout-20 x 50 ms, mlops runner on ray",
    ]
    assert all(
        r["ratio_vs_plain_ray"] > 0 for r in rows if "runner on ray" in r["case"] and "x 50" not in r["case"]
    )
    assert rows[-1]["ratio_vs_local"] > 0
    printed = capsys.readouterr().out
    assert "ratio_vs_plain_ray" in printed and "ratio_vs_local" in printed
    (cluster,) = ray_overhead.STOPPED
    assert cluster.leftovers() == []  # no process of the bench's cluster is left
