"""Batch prediction: apply a model to every row of a dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_nocode.library.frames import feature_columns, read_dataset, require_columns, write_dataset
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.runtime.context import StepContext


def batch_predict(
    *,
    model: str,
    dataset: str,
    prediction_column: str = "prediction",
    probabilities: bool = True,
    ctx: StepContext,
) -> dict[str, Any]:
    """The dataset with a prediction column added (and `proba_<class>` columns for classifiers)."""
    if not prediction_column:
        raise ValueError("prediction_column must not be empty")
    estimator, meta = load_model(model)
    frame = read_dataset(dataset)
    features: list[str] = meta.get("features") or feature_columns(frame, exclude=[meta.get("target")])
    require_columns(frame, features, "model feature")
    x = frame[features]
    out = frame.copy()
    if meta.get("task") == "transform" and not hasattr(estimator, "predict"):
        raise ValueError("this model is a transformer (e.g. a scaler); it makes no predictions")
    out[prediction_column] = estimator.predict(x)
    if probabilities and meta.get("task") == "classification" and hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(x))
        for i, label in enumerate(estimator.classes_):
            out[f"proba_{label}"] = proba[:, i]
    ctx.log.info("predicted %d rows with %s", len(out), meta.get("estimator"))
    return {"predictions": write_dataset(out, ctx, "predictions")}
