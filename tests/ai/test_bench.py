"""bench/assistant.py keeps working (its figures are read by people, never asserted here)."""

from __future__ import annotations

import os
from pathlib import Path

from bench import assistant


def test_the_assistant_bench_runs_a_repair_cycle_of_twenty_steps(home: Path) -> None:
    rows = assistant.main(quick=True)
    assert [r["case"] for r in rows][2] == "assistant: refused answer + repair + valid answer, per cycle"
    assert assistant.twenty_steps().count("    - {id: ") == 20
    assert os.environ["MLOPS_HOME"] == str(home), "the bench gives MLOPS_HOME back"
