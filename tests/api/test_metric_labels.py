"""Label values stay bounded: beyond LABEL_VALUES_CAP distinct pipelines, steps, metrics or workers, the
rest are reported as OTHER (a small cap here); the run target label and its backfill; deployment costs.
On a real SQLite database, through the run service the gateway uses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_nocode.monitoring import names
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.deployrecords import DeploymentRecords
from mlops_nocode.runs.labels import pipeline_label, plan_target
from mlops_nocode.runs.models import RunRow
from mlops_nocode.runs.service import NewEvent, RunService
from mlops_nocode.runs.stats import read_snapshot
from mlops_nocode.runs.workers import Heartbeats

CAP = 3


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunService]:
    monkeypatch.setattr(names, "LABEL_VALUES_CAP", CAP)
    db = Database(f"sqlite:///{tmp_path / 'mlops.db'}")
    db.migrate(tmp_path)
    yield RunService(db)
    db.close()


def _running(service: RunService, run_id: str, pipeline: str, created: float) -> None:
    plan = {"root": pipeline, "steps": [{"id": f"step-{run_id}", "runtime": "python"}]}
    with service.db.session() as s:
        s.add(
            RunRow(
                id=run_id, pipeline=pipeline, plan=plan, parameters={}, status="running", created_at=created,
                started_at=created + 1, worker_id="w", heartbeat_at=time.time(), attempts=1,
                cancel_requested=False, target_label=plan_target(plan),
            )
        )  # fmt: skip


def test_user_strings_beyond_the_cap_become_other(service: RunService) -> None:
    now = time.time()
    for i in range(CAP + 2):
        run_id = f"r{i}"
        _running(service, run_id, f"pipeline/p{i}@1.0.0", now - 100 + i)
        step = f"step-{run_id}"
        events = [
            NewEvent("metric", step, {"name": f"m{i}", "value": float(i)}, now),
            NewEvent("step.finished", step, {"status": "succeeded", "duration": 2.0}, now),
        ]
        service.report(run_id, "w", 1, events, None)
        assert service.finish(run_id, "w", "succeeded", None, None)
    snap = read_snapshot(service.db)
    pipelines = {p for _, _, p in snap.finished}
    assert pipelines == {"p0", "p1", "p2", names.OTHER}
    assert snap.finished[("succeeded", "local", names.OTHER)] == 2  # p3 and p4
    steps = snap.histograms["mlops_step_duration_seconds"]
    assert {labels[0] for labels in steps} == {"p0", "p1", "p2", names.OTHER}
    assert {labels[1] for labels in steps} == {"step-r0", "step-r1", "step-r2", names.OTHER}
    assert sum(h.count for h in steps.values()) == CAP + 2
    metrics = {labels[2] for labels in snap.step_metrics}
    assert metrics == {"m0", "m1", "m2", names.OTHER}
    assert all("r3" not in str(labels) for labels in (*snap.finished, *steps, *snap.step_metrics))


def test_worker_names_beyond_the_cap_become_other(service: RunService) -> None:
    beats = Heartbeats(service.db, [f"host:1:t{i}" for i in range(CAP + 2)], every=60)
    beats.beat()
    snap = read_snapshot(service.db)
    assert len(snap.workers) == CAP + 1 and names.OTHER in snap.workers
    beats.stop()
    assert read_snapshot(service.db).workers == {}


def test_target_and_pipeline_labels() -> None:
    assert plan_target({"steps": []}) == "local"
    assert plan_target({"steps": [{"target": {"provider": "auto"}}]}) == "local"
    assert (
        plan_target({"steps": [{"placement": {"provider": "runpod"}}, {"target": {"provider": "runpod"}}]})
        == "runpod"
    )
    assert plan_target({"steps": [{"placement": {"provider": "runpod"}}, {}]}) == "mixed"
    assert pipeline_label("pipeline/iris-classifier@1.0.0") == "iris-classifier"
    assert pipeline_label("metapipeline/nested") == "nested"


def test_deployment_costs(service: RunService) -> None:
    _running(service, "r1", "pipeline/gpu@1.0.0", time.time() - 10)
    records = DeploymentRecords(service.db)
    records.record("r1", "d1", "runpod", "provisioning", price_per_hour=3600.0)
    snap = read_snapshot(service.db)
    assert snap.cost_per_hour["runpod"] == 3600.0
    assert 0 < snap.cost_spent["runpod"] < 60  # a dollar a second, for the seconds since provisioning
    records.record("r1", "d1", "runpod", "succeeded", provisioned={"id": "x"})
    assert read_snapshot(service.db).cost_per_hour["runpod"] == 3600.0  # still exists: still billed
    records.record("r1", "d1", "runpod", "destroyed")
    first = read_snapshot(service.db)
    assert first.cost_per_hour["runpod"] == 0.0
    later = read_snapshot(service.db)
    assert later.cost_spent["runpod"] == first.cost_spent["runpod"]  # nothing more once destroyed


def test_hostile_label_values_stay_inside_their_quotes(service: RunService) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from mlops_nocode.api.metrics import MonitoringConfig, render_database

    now = time.time()
    evil = 'x"} 1\nmlops_fake_total 99\n# TYPE \\'
    _running(service, "r1", f"pipeline/{evil}@1.0.0", now)
    events = [
        NewEvent("metric", "step-r1", {"name": evil, "value": 1.0}, now),
        NewEvent("metric", "step-r1", {"name": "m" * 600, "value": 2.0}, now),  # too long: OTHER
        NewEvent("step.finished", "step-r1", {"duration": 1.0}, now),
    ]
    service.report("r1", "w", 1, events, None)
    assert service.finish("r1", "w", "succeeded", None, None)
    text = render_database(service, MonitoringConfig())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "mlops_fake" not in families
    metrics = {s.labels["metric"]: s.value for s in families["mlops_step_metric"].samples}
    assert metrics == {evil: 1.0, names.OTHER: 2.0}
    assert {s.labels["pipeline"] for s in families["mlops_runs_finished"].samples} == {evil}


def test_migration_0010_counts_the_runs_that_already_ended(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from mlops_nocode.runs.db import MIGRATIONS

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url)
    command.upgrade(cfg, "0009_assistant")
    plan = '{"steps": [{"id": "a", "placement": {"provider": "runpod"}}]}'
    with db.engine.begin() as c:
        for i, (status, started, finished) in enumerate(
            [
                ("succeeded", 10.0, 70.0),
                ("failed", 10.0, 11.0),
                ("cancelled", None, 5.0),
                ("queued", None, None),
            ]
        ):
            c.execute(
                text(
                    "INSERT INTO runs (id, pipeline, plan, parameters, status, created_at, started_at, "
                    "finished_at, attempts, cancel_requested, keep) VALUES (:id, 'pipeline/old@1.0.0', "
                    ":plan, '{}', :status, 1.0, :started, :finished, 1, 0, 0)"
                ),
                {"id": f"r{i}", "plan": plan, "status": status, "started": started, "finished": finished},
            )
    db.migrate(tmp_path)
    snap = read_snapshot(db)
    assert snap.finished == {
        ("succeeded", "runpod", "old"): 1,
        ("failed", "runpod", "old"): 1,
        ("cancelled", "runpod", "old"): 1,
    }
    assert snap.durations[("succeeded", "runpod", "old")].total == 60.0
    assert snap.started == {("runpod", "old"): 2} and snap.waits[("runpod",)].total == 18.0
    assert snap.queue_depth == 1
    db.close()


def test_runs_ended_by_recovery_are_counted(service: RunService) -> None:
    _running(service, "r1", "pipeline/lost@1.0.0", time.time() - 100)
    with service.db.session() as s:
        row = s.get(RunRow, "r1")
        assert row is not None
        row.heartbeat_at = time.time() - 100
    requeued, ended = service.recover(stale_after=10, max_attempts=1)
    assert ended == ["r1"] and requeued == 0
    snap = read_snapshot(service.db)
    assert snap.finished == {("failed", "local", "lost"): 1}
