"""Evaluation steps: classifier and regressor metrics on a held-out dataset, and k-fold cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn import model_selection
from sklearn.base import clone

from mlops_nocode.library.estimators import Hyperparameters, build_estimator, estimator_kind
from mlops_nocode.library.frames import read_dataset, require_columns, split_xy
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.reporting import jsonable, report_metrics
from mlops_nocode.runtime.context import StepContext

CV_SCORINGS = (
    "accuracy",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "roc_auc",
    "r2",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
)


def _model_and_data(
    model: str, dataset: str, target: str
) -> tuple[Any, dict[str, Any], pd.DataFrame, pd.Series]:
    estimator, meta = load_model(model)
    label = target or meta.get("target") or ""
    if not label:
        raise ValueError("the model does not record its target column; set the 'target' parameter")
    frame = read_dataset(dataset)
    features: list[str] = meta.get("features") or []
    if features:
        require_columns(frame, features, "model feature")
    x, y = split_xy(frame, label, features)
    if len(x) == 0:
        raise ValueError("the evaluation dataset is empty")
    return estimator, meta, x, y


def evaluate_classifier(*, model: str, dataset: str, target: str = "", ctx: StepContext) -> dict[str, Any]:
    """Accuracy, macro F1/precision/recall (and ROC AUC when binary) plus a confusion-matrix report."""
    estimator, meta, x, y = _model_and_data(model, dataset, target)
    predicted = estimator.predict(x)
    values: dict[str, float] = {
        "accuracy": skm.accuracy_score(y, predicted),
        "f1_macro": skm.f1_score(y, predicted, average="macro", zero_division=0),
        "precision_macro": skm.precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, predicted, average="macro", zero_division=0),
        "n_samples": len(y),
    }
    classes = list(getattr(estimator, "classes_", np.unique(np.concatenate([np.asarray(y), predicted]))))
    if len(classes) == 2 and y.nunique() == 2:
        if hasattr(estimator, "predict_proba"):
            values["roc_auc"] = skm.roc_auc_score(y == classes[1], estimator.predict_proba(x)[:, 1])
        elif hasattr(estimator, "decision_function"):
            values["roc_auc"] = skm.roc_auc_score(y == classes[1], estimator.decision_function(x))
    matrix = skm.confusion_matrix(y, predicted, labels=classes)
    report = {
        "task": "classification",
        "estimator": meta.get("estimator"),
        "labels": jsonable(classes),
        "confusion_matrix": jsonable(matrix),
        "per_class": jsonable(
            skm.classification_report(
                y,
                predicted,
                labels=classes,
                output_dict=True,
                zero_division=0,
                target_names=[str(c) for c in classes],
            )
        ),
    }
    return {"metrics": report_metrics(ctx, values), "report": report}


def evaluate_regressor(*, model: str, dataset: str, target: str = "", ctx: StepContext) -> dict[str, Any]:
    """RMSE, MAE, R² and MAPE (over rows whose true value is not zero) of a regressor."""
    estimator, _meta, x, y = _model_and_data(model, dataset, target)
    truth = np.asarray(y, dtype="float64")
    predicted = np.asarray(estimator.predict(x), dtype="float64")
    values: dict[str, float] = {
        "rmse": float(np.sqrt(skm.mean_squared_error(truth, predicted))),
        "mae": skm.mean_absolute_error(truth, predicted),
        "n_samples": len(truth),
    }
    if len(truth) >= 2:
        values["r2"] = skm.r2_score(truth, predicted)
    nonzero = np.abs(truth) > 1e-12
    if nonzero.any():
        values["mape"] = float(np.mean(np.abs((truth[nonzero] - predicted[nonzero]) / truth[nonzero])))
    return {"metrics": report_metrics(ctx, values)}


def cross_validate(
    *,
    dataset: str,
    model: str | None = None,
    estimator: str = "random_forest",
    target: str = "target",
    features: Sequence[str] = (),
    folds: int = 5,
    scoring: str = "",
    shuffle: bool = True,
    n_estimators: int = 100,
    max_depth: int = 0,
    C: float = 1.0,
    alpha: float = 1.0,
    n_neighbors: int = 5,
    learning_rate: float = 0.1,
    random_state: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """K-fold cross-validation of an estimator: the named one, or a fresh copy of a connected `model`.

    Folds are stratified for classifiers; with `shuffle` false they are time-ordered (train before test).
    `scoring` empty means accuracy for classifiers and r2 for regressors.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if model is not None:
        fitted, meta = load_model(model)
        unfitted = clone(fitted)
        task = meta.get("task")
        features = features or meta.get("features") or ()
        target = meta.get("target") or target
        name = str(meta.get("estimator"))
        ctx.log.info(
            "cross-validating a fresh copy of the connected model (%s); estimator params ignored", name
        )
    else:
        task = estimator_kind(estimator).task
        hyper = Hyperparameters(n_estimators, max_depth, C, alpha, n_neighbors, learning_rate, random_state)
        unfitted, name = build_estimator(estimator, hyper), estimator
    if task not in ("classification", "regression"):
        raise ValueError(f"cannot cross-validate a model whose task is {task!r}")
    x, y = split_xy(read_dataset(dataset), target, features)
    score_name = scoring or ("accuracy" if task == "classification" else "r2")
    if score_name not in CV_SCORINGS:
        raise ValueError(f"unknown scoring {score_name!r}; choose one of {', '.join(CV_SCORINGS)}")
    splitter: Any
    if not shuffle:
        splitter = model_selection.TimeSeriesSplit(n_splits=folds)
    elif task == "classification":
        splitter = model_selection.StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    else:
        splitter = model_selection.KFold(n_splits=folds, shuffle=True, random_state=random_state)
    ctx.log.info("%d-fold cross-validation of %s, scoring %s", folds, name, score_name)
    scores = model_selection.cross_val_score(
        unfitted, x, y, cv=splitter, scoring=score_name, n_jobs=1, error_score="raise"
    )
    values = {
        f"{score_name}_mean": float(np.mean(scores)),
        f"{score_name}_std": float(np.std(scores)),
        f"{score_name}_min": float(np.min(scores)),
        f"{score_name}_max": float(np.max(scores)),
        "folds": folds,
    }
    return {"metrics": report_metrics(ctx, values)}
