"""Every catalogue example, end to end through the real `mlops` command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

Mlops = Callable[..., CliResult]


def test_ml_portfolio_runs_all_examples_with_sane_metrics(mlops: Mlops) -> None:
    r = mlops("run", "metapipeline/ml-portfolio", "--json")
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded"
    assert all(s["status"] == "succeeded" for s in summary["steps"].values())
    assert any("/" in sid for sid in summary["steps"])  # flattened, namespaced ids
    metrics = {k: v for k, v in summary["outputs"].items() if isinstance(v, dict)}
    iris = next(v for k, v in metrics.items() if "iris" in k and "accuracy" in v)
    assert iris["accuracy"] > 0.9
    assert any("r2" in v and v["r2"] > 0.5 for v in metrics.values())
    assert any("anomaly_rate" in v and 0 < v["anomaly_rate"] < 0.5 for v in metrics.values())
    # a second run reuses every step from the cache
    again = mlops("run", "metapipeline/ml-portfolio", "--json")
    assert again.code == 0, again
    assert all(s["cached"] for s in again.json()["steps"].values())


@pytest.mark.parametrize("name", ["iris-classifier", "log-anomaly-detection", "sales-forecast"])
def test_each_pipeline_runs(mlops: Mlops, name: str) -> None:
    r = mlops("run", f"pipeline/{name}", "--json", "--no-cache")
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded"
    assert summary["outputs"], "pipelines expose outputs"
    for value in summary["outputs"].values():
        if isinstance(value, str):
            assert Path(value).exists()


def test_iris_set_override_changes_the_model(mlops: Mlops) -> None:
    r = mlops("run", "pipeline/iris-classifier", "--set", "estimator=logistic_regression", "--json")
    assert r.code == 0, r
    assert "logistic_regression" in r.stdout or r.json()["status"] == "succeeded"
    bad = mlops("run", "pipeline/iris-classifier", "--set", "estimator=telepathy")
    assert bad.code == 2
    assert "telepathy" in bad.stderr and "fix:" in bad.stderr


def test_human_output_shows_progress_and_metrics(mlops: Mlops) -> None:
    r = mlops("run", "pipeline/iris-classifier")
    assert r.code == 0, r
    assert "accuracy" in r.stdout
    assert "✓" in r.stderr and "classify/train" in r.stderr.replace("\n", "")
