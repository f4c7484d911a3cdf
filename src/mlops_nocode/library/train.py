"""The training step: fit one of the registered scikit-learn estimators on a dataset."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mlops_nocode.library.estimators import Hyperparameters, build_estimator, estimator_kind, final_params
from mlops_nocode.library.frames import read_dataset, split_xy
from mlops_nocode.library.modelfile import build_metadata, save_model
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext


def train(
    *,
    dataset: str,
    estimator: str = "random_forest",
    target: str = "target",
    features: Sequence[str] = (),
    n_estimators: int = 100,
    max_depth: int = 0,
    C: float = 1.0,
    alpha: float = 1.0,
    n_neighbors: int = 5,
    learning_rate: float = 0.1,
    random_state: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Fit `estimator` on the dataset's features to predict `target`; output the model and train metrics."""
    kind = estimator_kind(estimator)
    frame = read_dataset(dataset)
    x, y = split_xy(frame, target, features)
    if len(x) == 0:
        raise ValueError("the training dataset is empty")
    hyper = Hyperparameters(
        n_estimators=n_estimators,
        max_depth=max_depth,
        C=C,
        alpha=alpha,
        n_neighbors=min(n_neighbors, len(x)),
        learning_rate=learning_rate,
        random_state=random_state,
    )
    pipeline = build_estimator(estimator, hyper)
    ctx.log.info("fitting %s on %d rows x %d features", estimator, len(x), x.shape[1])
    started = time.perf_counter()
    pipeline.fit(x, y)
    seconds = time.perf_counter() - started
    metrics: dict[str, float] = {
        "train_score": float(pipeline.score(x, y)),
        "n_samples": len(x),
        "n_features": x.shape[1],
        "fit_seconds": seconds,
    }
    if kind.task == "classification":
        metrics["n_classes"] = len(pipeline.classes_)
    meta = build_metadata(
        pipeline,
        name=estimator,
        task=kind.task,
        features=[str(c) for c in x.columns],
        target=target,
        params=final_params(pipeline),
    )
    return {"model": save_model(pipeline, ctx, meta), "metrics": report_metrics(ctx, metrics)}
