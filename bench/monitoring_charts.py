"""What the monitoring page's charts cost the gateway when they come from its own database (no
PROMETHEUS_URL): each panel computed by `runs/history.py` over a SQLite database holding 10,000 runs of
the last 24 hours (a fifth failed), each with 4 step events and 2 metric events, for the ranges the page
offers. Target: a panel under 0.5 s for 24 hours. Run: `python -m bench.monitoring_charts [--quick]`
(uses a scratch database)."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show


def seed(db: Any, runs: int, now: float) -> str:
    """`runs` ended runs of 5 pipelines spread over the last 24 h; the first pipeline's name."""
    from mlops_nocode.runs.models import EventRow, RunRow

    rnd = random.Random(7)
    runs_rows, events = [], []
    for i in range(runs):
        created = now - rnd.uniform(60, 86_400)
        started, finished = created + rnd.uniform(0, 5), created + rnd.uniform(6, 120)
        status = "failed" if i % 5 == 0 else "succeeded"
        rid = f"bench-{i:06d}"
        runs_rows.append(
            RunRow(
                id=rid,
                pipeline=f"pipeline/p{i % 5}@1.0.0",
                plan={},
                parameters={},
                status=status,
                created_at=created,
                started_at=started,
                finished_at=finished,
                attempts=1,
            )
        )
        ended = "step.finished" if status == "succeeded" else "step.failed"
        for seq, (kind, ts, data) in enumerate(
            [
                ("step.started", started + 1, {}),
                ("metric", finished - 2, {"name": "accuracy", "value": rnd.random()}),
                ("metric", finished - 2, {"name": "loss", "value": rnd.random()}),
                (ended, finished - 1, {"duration": 3.0}),
            ],
            1,
        ):
            events.append(EventRow(run_id=rid, seq=seq, type=kind, step="fit", ts=ts, data=data))
    with db.session() as s:
        s.add_all(runs_rows)
        s.flush()
        s.add_all(events)
    return "pipeline/p0@1.0.0"


def main(quick: bool = False) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from mlops_nocode.api.routes.monitoring import grid
    from mlops_nocode.monitoring.charts import PANELS, charts_of
    from mlops_nocode.runs.db import Database
    from mlops_nocode.runs.history import History
    from mlops_nocode.runs.models import RunRow

    runs = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as home:
        db = Database(f"sqlite:///{Path(home) / 'mlops.db'}")
        db.migrate(Path(home))
        now = time.time()
        pipeline = seed(db, runs, now)
        history = History(db)
        rows = []
        for label, seconds in (("1 h", 3600), ("24 h", 86_400), ("30 d", 30 * 86_400)):
            start, end, step = grid(seconds, 15, now)

            def fetch(start: float = start, end: float = end) -> None:
                with db.read() as c:  # the baseline: only reading the range's runs, no chart made
                    c.execute(
                        select(RunRow.status, RunRow.started_at, RunRow.finished_at).where(
                            RunRow.finished_at > start, RunRow.finished_at <= end
                        )
                    ).all()

            base = best_of(fetch)
            rows.append(row(f"baseline: read the runs of {label}", base, 1, base, "read"))
            for panel in PANELS:
                charts = charts_of(panel)
                p = pipeline if panel in ("runs", "models") else None
                box = (charts, start, end, step, p)

                def compute(box: Any = box) -> None:
                    charts, start, end, step, p = box
                    for c in charts:
                        history.chart(c.id, start, end, step, p)

                rows.append(
                    row(f"{panel}, {label}, {runs} runs", best_of(compute), len(charts), base, "read")
                )
        db.close()
    show(
        "monitoring charts from the gateway's database "
        "(per_item: one chart; ratio: to reading the range's runs)",
        rows,
    )
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
