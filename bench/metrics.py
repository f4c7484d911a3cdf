"""Cost of metrics: `python -m bench.metrics [--quick]`.

(a) Gateway request throughput with metrics on and off, in the same run: two `mlops up` processes on
the same SQLite database, one with METRICS_ENABLED=false, loaded in alternating rounds with `wrk` on
`GET /pipelines/{id}/status` (the ratio is what counts: both share the machine the same way).
(b) `GET /metrics` latency with 10,000 runs (and their events, step histograms and step metrics)
written straight to the database, beside `GET /health` on the same gateway as a baseline, and the
in-process cost of one database snapshot (runs.stats.read_snapshot).
Only 127.0.0.1 is contacted; wrk must be on PATH (apt-get install wrk).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench import wrk
from bench.gateway_load import free_port, serve
from bench.harness import show
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.eventstats import RUN_FAMILY, WAIT_FAMILY, _observe, record_events, record_success
from mlops_nocode.runs.labels import Admitted, pipeline_label
from mlops_nocode.runs.models import EventRow, RunRow
from mlops_nocode.runs.stats import read_snapshot

STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")
TARGETS = ("local", "local", "k3s", "runpod")


def fill(db: Database, runs: int) -> None:
    """`runs` ended runs of 50 pipelines (3 steps each, 4 events a step) and their aggregates."""
    now = time.time()
    rows, events = [], []
    for i in range(runs):
        pipeline = f"pipeline/bench-{i % 50}@1.0.0"
        steps = [
            {"id": f"s{j}", "runtime": "python", "target": {"provider": TARGETS[i % 4]}} for j in range(3)
        ]
        created = now - 86400 + i * 5
        rows.append(
            {
                "id": f"bench-{i:06d}", "pipeline": pipeline, "plan": {"root": pipeline, "steps": steps},
                "parameters": {}, "status": STATUSES[i % 5], "created_at": created, "started_at": created + 1,
                "finished_at": created + 2 + i % 600, "attempts": 1, "cancel_requested": False,
                "keep": False, "target_label": TARGETS[i % 4],
            }
        )  # fmt: skip
        for j in range(3):
            seq = j * 4
            for k, (kind, data) in enumerate(
                (
                    ("step.started", {}),
                    ("log", {"line": "working"}),
                    ("metric", {"name": "accuracy", "value": 0.9 + j / 100}),
                    ("step.finished", {"status": "succeeded", "duration": 1.5 * (j + 1)}),
                )
            ):
                events.append(
                    {"run_id": f"bench-{i:06d}", "seq": seq + k + 1, "type": kind, "step": f"s{j}",
                     "data": data, "ts": created + 1}
                )  # fmt: skip
    with db.engine.begin() as c:
        c.execute(insert(RunRow), rows)
        c.execute(insert(EventRow), events)
    with db.session() as s:  # what claim, report and finish aggregate as they write, grouped
        runs_of: dict[str, list[RunRow]] = {}
        for r in s.query(RunRow).all():
            runs_of.setdefault(r.pipeline, []).append(r)
        events_of: dict[str, list[EventRow]] = {}
        for e in s.query(EventRow).all():
            events_of.setdefault(e.run_id, []).append(e)
        admitted = Admitted(s)
        for pipeline, group in runs_of.items():
            label = admitted("pipeline", pipeline_label(pipeline))
            waits: dict[tuple[str, ...], list[float]] = {}
            ends: dict[tuple[str, ...], list[float]] = {}
            for r in group:
                assert r.started_at is not None and r.finished_at is not None
                waits.setdefault((r.target_label, label), []).append(r.started_at - r.created_at)
                ends.setdefault((r.status, r.target_label, label), []).append(r.finished_at - r.started_at)
            for labels, values in waits.items():
                _observe(s, WAIT_FAMILY, labels, values)
            for labels, values in ends.items():
                _observe(s, RUN_FAMILY, labels, values)
            record_events(s, group[0], [e for r in group for e in events_of.get(r.id, [])])
            record_success(s, group[0].id)


def throughput(on: str, off: str, key: str, path: str, rounds: int, seconds: float) -> dict[str, Any]:
    """Alternating wrk rounds on the same path of both gateways (on first in even rounds, off first in
    odd ones); the ratio is the median of the per-round ratios, so drifting background load cancels."""
    results: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(rounds):
        order = (("on", on), ("off", off)) if i % 2 == 0 else (("off", off), ("on", on))
        for name, url in order:
            results[name].append(wrk.run(url + path, key, 32, seconds)["req_per_s"])
    ratios = [a / b for a, b in zip(results["on"], results["off"], strict=True) if b]
    return {
        "on_req_per_s": statistics.median(results["on"]),
        "off_req_per_s": statistics.median(results["off"]),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 2) for r in ratios],
    }


def main(quick: bool = False) -> dict[str, Any]:
    if wrk.available() is None:
        raise SystemExit(f"wrk is needed: {wrk.HOW_TO_GET}")
    runs = 2000 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as d:
        home = Path(d) / "home"
        home.mkdir()
        db = Database(f"sqlite:///{home / 'mlops.db'}")
        db.migrate(home)
        started = time.perf_counter()
        fill(db, runs)
        filled = time.perf_counter() - started
        snaps = []
        for _ in range(20):
            t = time.perf_counter()
            read_snapshot(db)
            snaps.append((time.perf_counter() - t) * 1000)
        db.close()
        env = {**os.environ, "MLOPS_HOME": str(home), "WORKERS": "0", "THROTTLE_DISABLE": "true"}
        env.pop("DATABASE_URL", None)
        argv = [sys.executable, "-m", "mlops_nocode.cli.main", "up", "--port"]
        p_on, p_off = free_port(), free_port()
        with (
            serve([*argv, str(p_on)], p_on, env, Path(d) / "on.log") as on,
            serve(
                [*argv, str(p_off)], p_off, {**env, "METRICS_ENABLED": "false"}, Path(d) / "off.log"
            ) as off,
        ):
            key = json.loads((home / "credentials.json").read_text())["key"]
            assert httpx.get(f"{on}/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            assert httpx.get(f"{off}/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 404
            scrape = wrk.run(f"{on}/metrics", key, 1, 3 if quick else 10)
            health = wrk.run(f"{on}/health", None, 1, 3 if quick else 10)
            status = throughput(
                on, off, key, "/pipelines/bench-000001/status", 2 if quick else 10, 3 if quick else 4
            )
    result = {
        "runs": runs,
        "fill_s": round(filled, 1),
        "snapshot_ms_p50": round(statistics.median(snaps), 1),
        "metrics_p50_ms": scrape["p50_ms"],
        "metrics_p99_ms": scrape["p99_ms"],
        "health_p50_ms": health["p50_ms"],
        "metrics_to_health": round(scrape["p50_ms"] / max(health["p50_ms"], 0.01), 1),
        "status_req_per_s_on": status["on_req_per_s"],
        "status_req_per_s_off": status["off_req_per_s"],
        "throughput_on_off": status["ratio"],
        "round_ratios": status["ratios"],
    }
    show("metrics", [result])
    return result


if __name__ == "__main__":
    main("--quick" in sys.argv)
