"""What the CLI prints for people: `--version`, and tables that stay readable at 80 columns and for big
plans (summarised, with `--all` for every row). Each command runs as a real `mlops` process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rich.cells import cell_len
from rich.console import Console

from bench.specs import dag, playbook
from mlops_nocode import __version__
from mlops_nocode.cli.progress import summary_table
from mlops_nocode.cli.runs_view import events_table, runs_table
from tests.conftest import CliResult

Mlops = Callable[..., CliResult]
NARROW = {"COLUMNS": "80"}


def widest(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def test_version_option(mlops: Mlops) -> None:
    r = mlops("--version")
    assert r.code == 0, r
    assert r.stdout.strip() == f"mlops {__version__}"


def test_plan_table_fits_80_columns_one_line_per_step(mlops: Mlops) -> None:
    r = mlops("plan", "metapipeline/ml-portfolio", env=NARROW)
    assert r.code == 0, r
    assert widest(r.stdout) <= 80, r.stdout
    steps = mlops("plan", "metapipeline/ml-portfolio", "--json").json()["steps"]
    rows = [line for line in r.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == len(steps), r.stdout  # no row wraps onto a second line
    assert all("classify/train" in line for line in rows if "sklearn-train" in line and "iris" in line)


def big_spec(folder: Path, fanout: int = 10, levels: int = 4) -> Path:
    """A meta-pipeline of `fanout ** levels` playbook steps, written as one YAML file."""
    params = {"type": "object", "properties": {"seed": {"type": "integer", "default": 1}}}
    docs: list[dict[str, Any]] = [playbook("leaf", "bench.steps:noop", {"seed": {"type": "integer"}})]
    child = "playbook/leaf"
    for level in range(levels - 1, -1, -1):
        kind = "Pipeline" if level == levels - 1 else "MetaPipeline"
        doc = dag(
            f"level-{level}",
            fanout,
            "independent",
            uses=child,
            with_={"seed": "${{ params.seed }}"},
            kind=kind,
        )
        doc["spec"]["parameters"] = params
        docs.append(doc)
        child = f"{kind.lower()}/level-{level}"
    path = folder / "big.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def test_a_ten_thousand_step_plan_is_summarised(mlops: Mlops, tmp_path: Path) -> None:
    spec = big_spec(tmp_path)
    out = tmp_path / "plan.json"
    r = mlops("plan", str(spec), "--out", str(out), env=NARROW)
    assert r.code == 0, r
    assert len(json.loads(out.read_text())["steps"]) == 10_000
    assert len(r.stdout.splitlines()) < 80, r.stdout
    assert widest(r.stdout) <= 80, r.stdout
    assert "10,000 steps" in r.stdout and "⋯ 9,970 more steps" in r.stdout and "--all" in r.stdout
    assert "steps per namespace" in r.stdout and "1,000" in r.stdout  # s0 .. s9: 1,000 steps each
    every = mlops("plan", str(spec), "--all", env=NARROW)
    assert every.code == 0, every
    assert sum(line.startswith("│") for line in every.stdout.splitlines()) == 10_000


def render(table: Any, width: int = 80) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(table)
    return console.export_text()


def test_runs_events_and_summary_tables_fit_80_columns() -> None:
    now = time.time()
    runs = [
        {
            "id": f"20261130-024353-{i:06x}",
            "pipeline": "metapipeline/a-rather-long-pipeline-name@10.20.30",
            "status": "failed",
            "created_at": now - 100,
            "started_at": now - 99,
            "finished_at": now,
            "details": "step x failed: " + "a long reason " * 20,
        }
        for i in range(3)
    ]
    text = render(runs_table({"offset": 0, "total": 3, "items": runs}, 80))
    assert widest(text) <= 80
    for run in runs:  # ids whole (they are what `runs show` takes), one line per run
        assert sum(run["id"] in line for line in text.splitlines()) == 1
    events = [{"seq": 1, "ts": now, "type": "step.finished", "step": "a/b/c/d", "data": {"x": "y" * 500}}]
    assert widest(render(events_table(events, "r", 80))) <= 80
    steps = {f"ns/step-{i}": {"status": "succeeded", "duration": 0.1, "attempts": 1} for i in range(300)}
    steps["ns/step-150"] = {"status": "failed", "duration": 0.1, "attempts": 2, "error": "boom"}
    text = render(summary_table({"run_id": "r", "status": "failed", "steps": steps}, 80))
    assert widest(text) <= 80 and len(text.splitlines()) < 60
    assert "ns/step-150" in text and "1 failed" in text and "299 succeeded" in text
