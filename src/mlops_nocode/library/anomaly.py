"""Anomaly detection with an IsolationForest, scored against a ground-truth label when there is one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.ensemble import IsolationForest

from mlops_nocode.library.frames import feature_columns, read_dataset, write_dataset
from mlops_nocode.library.modelfile import build_metadata, save_model
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

SCORE_COLUMN = "anomaly_score"
PREDICTED_COLUMN = "predicted_anomaly"


def isolation_forest(
    *,
    dataset: str,
    features: Sequence[str] = (),
    label_column: str = "is_anomaly",
    contamination: float = 0.05,
    n_estimators: int = 100,
    random_state: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Fit an IsolationForest on the feature columns and score every row.

    The scored dataset gains `anomaly_score` (higher = more anomalous) and `predicted_anomaly` (0/1).
    When `label_column` is in the dataset it is never used as a feature; it is the ground truth for
    precision, recall, F1 and ROC AUC.
    """
    if not 0.0 < contamination <= 0.5:
        raise ValueError(f"contamination must be in (0, 0.5], got {contamination}")
    frame = read_dataset(dataset)
    cols = feature_columns(frame, features, exclude=[label_column, SCORE_COLUMN, PREDICTED_COLUMN])
    x = frame[cols].astype("float64")
    forest = IsolationForest(
        n_estimators=n_estimators, contamination=contamination, random_state=random_state, n_jobs=1
    )
    forest.fit(x)
    scores = -forest.score_samples(x)
    predicted = (forest.predict(x) == -1).astype("int64")
    scored = frame.copy()
    scored[SCORE_COLUMN] = scores
    scored[PREDICTED_COLUMN] = predicted
    values: dict[str, float] = {
        "anomaly_rate": float(predicted.mean()),
        "n_anomalies": int(predicted.sum()),
        "n_samples": len(frame),
    }
    has_label = bool(label_column) and label_column in frame.columns
    if has_label:
        truth = np.asarray(frame[label_column]).astype(bool).astype("int64")
        values["label_rate"] = float(truth.mean())
        values["precision"] = skm.precision_score(truth, predicted, zero_division=0)
        values["recall"] = skm.recall_score(truth, predicted, zero_division=0)
        values["f1"] = skm.f1_score(truth, predicted, zero_division=0)
        if 0 < truth.sum() < len(truth):
            values["roc_auc"] = skm.roc_auc_score(truth, scores)
    params = {"contamination": contamination, "n_estimators": n_estimators, "random_state": random_state}
    meta = build_metadata(
        forest,
        name="isolation_forest",
        task="anomaly_detection",
        features=cols,
        target=label_column if has_label else None,
        params=params,
    )
    ctx.log.info("isolation forest on %d rows x %d features", len(x), len(cols))
    return {
        "model": save_model(forest, ctx, meta),
        "scored": write_dataset(scored, ctx, "scored"),
        "metrics": report_metrics(ctx, values),
    }
