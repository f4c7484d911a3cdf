"""Synthetic server logs, log features and the isolation forest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_nocode.library.anomaly import isolation_forest
from mlops_nocode.library.features import log_features
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.synthetic import LOG_COLUMNS, generate_server_logs

from .support import MakeCtx


@pytest.fixture
def logs_path(make_ctx: MakeCtx) -> str:
    return str(generate_server_logs(n_rows=3000, anomaly_fraction=0.03, seed=7, ctx=make_ctx())["dataset"])


def test_generated_logs(logs_path: str, make_ctx: MakeCtx) -> None:
    logs = pd.read_parquet(logs_path)
    assert list(logs.columns) == LOG_COLUMNS and len(logs) == 3000
    assert logs["is_anomaly"].sum() == 90
    assert logs["timestamp"].is_monotonic_increasing
    normal, anomalous = logs[logs["is_anomaly"] == 0], logs[logs["is_anomaly"] == 1]
    assert (normal["status"] >= 500).mean() < 0.02
    assert (anomalous["status"] >= 500).mean() > 0.25
    assert anomalous["latency_ms"].median() > 2 * normal["latency_ms"].median()
    again = pd.read_parquet(
        generate_server_logs(n_rows=3000, anomaly_fraction=0.03, seed=7, ctx=make_ctx())["dataset"]
    )
    pd.testing.assert_frame_equal(logs, again)
    other = pd.read_parquet(generate_server_logs(n_rows=3000, seed=8, ctx=make_ctx())["dataset"])
    assert not logs["latency_ms"].equals(other["latency_ms"])


def test_log_features(logs_path: str, make_ctx: MakeCtx) -> None:
    feats = pd.read_parquet(log_features(dataset=logs_path, window=10, ctx=make_ctx())["dataset"])
    logs = pd.read_parquet(logs_path)
    assert len(feats) == len(logs)
    numeric = feats.select_dtypes("number").drop(columns="is_anomaly")
    assert set(numeric.columns) == {
        "log_latency", "log_bytes", "latency_z", "bytes_z", "is_server_error", "is_client_error",
        "host_error_rate", "host_latency_z",
    }  # fmt: skip
    assert np.isfinite(numeric.to_numpy()).all()
    np.testing.assert_allclose(feats["log_latency"], np.log1p(logs["latency_ms"]))
    assert feats["host_error_rate"].between(0, 1).all()
    anomalous = feats["is_anomaly"] == 1
    assert feats.loc[anomalous, "latency_z"].mean() > feats.loc[~anomalous, "latency_z"].mean() + 1
    no_label = pd.read_parquet(log_features(dataset=logs_path, label_column="", ctx=make_ctx())["dataset"])
    assert "is_anomaly" not in no_label.columns


def test_isolation_forest_finds_injected_anomalies(logs_path: str, make_ctx: MakeCtx) -> None:
    feats = str(log_features(dataset=logs_path, ctx=make_ctx())["dataset"])
    out = isolation_forest(dataset=feats, contamination=0.05, ctx=make_ctx())
    metrics = out["metrics"]
    assert metrics["label_rate"] == pytest.approx(0.03)
    assert metrics["anomaly_rate"] == pytest.approx(0.05, abs=0.005)
    # chance level would be precision = 0.03 and ROC AUC = 0.5
    assert metrics["precision"] > 0.3
    assert metrics["recall"] > 0.5
    assert metrics["roc_auc"] > 0.9
    scored = pd.read_parquet(out["scored"])
    assert scored["predicted_anomaly"].sum() == metrics["n_anomalies"]
    flagged = scored["predicted_anomaly"] == 1
    assert scored.loc[flagged, "anomaly_score"].min() >= scored.loc[~flagged, "anomaly_score"].max()
    model, meta = load_model(out["model"])
    assert "is_anomaly" not in meta["features"] and meta["task"] == "anomaly_detection"
    np.testing.assert_array_equal(model.predict(scored[meta["features"]]) == -1, flagged.to_numpy())


def test_isolation_forest_without_labels(logs_path: str, make_ctx: MakeCtx) -> None:
    feats = str(log_features(dataset=logs_path, label_column="", ctx=make_ctx())["dataset"])
    metrics = isolation_forest(dataset=feats, contamination=0.1, label_column="", ctx=make_ctx())["metrics"]
    assert set(metrics) == {"anomaly_rate", "n_anomalies", "n_samples"}
    assert metrics["anomaly_rate"] == pytest.approx(0.1, abs=0.01)
