"""Training, held-out evaluation and cross-validation on real scikit-learn data."""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from mlops_nocode.library.datasets import load_sklearn_dataset
from mlops_nocode.library.estimators import CLASSIFIERS, REGRESSORS
from mlops_nocode.library.evaluate import cross_validate, evaluate_classifier, evaluate_regressor
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.preprocess import train_test_split
from mlops_nocode.library.train import train

from .support import MakeCtx


def _split(make_ctx: MakeCtx, name: str, stratify: bool) -> dict[str, Any]:
    data = load_sklearn_dataset(name=name, ctx=make_ctx())["dataset"]
    return train_test_split(dataset=str(data), test_size=0.25, stratify=stratify, ctx=make_ctx())


@pytest.mark.parametrize("estimator", CLASSIFIERS)
def test_iris_classifiers_are_accurate(estimator: str, make_ctx: MakeCtx) -> None:
    split = _split(make_ctx, "iris", stratify=True)
    trained = train(dataset=str(split["train"]), estimator=estimator, n_estimators=50, ctx=make_ctx())
    assert trained["metrics"]["n_samples"] == 112
    assert trained["metrics"]["n_features"] == 4
    assert trained["metrics"]["n_classes"] == 3
    assert trained["metrics"]["train_score"] > 0.9
    out = evaluate_classifier(model=str(trained["model"]), dataset=str(split["test"]), ctx=make_ctx())
    metrics, report = out["metrics"], out["report"]
    # a single unpruned tree overfits a little; every other classifier clears 0.9
    assert metrics["accuracy"] > (0.85 if estimator == "decision_tree" else 0.9)
    assert set(metrics) == {"accuracy", "f1_macro", "precision_macro", "recall_macro", "n_samples"}
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 38
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["accuracy"])
    assert report["labels"] == [0, 1, 2]


def test_binary_evaluation_has_roc_auc(make_ctx: MakeCtx) -> None:
    split = _split(make_ctx, "breast_cancer", stratify=True)
    for estimator in ("logistic_regression", "svm"):
        trained = train(dataset=str(split["train"]), estimator=estimator, ctx=make_ctx())
        metrics = evaluate_classifier(
            model=str(trained["model"]), dataset=str(split["test"]), ctx=make_ctx()
        )["metrics"]
        assert metrics["roc_auc"] > 0.95
        assert metrics["accuracy"] > 0.9


@pytest.mark.parametrize("estimator", REGRESSORS)
def test_diabetes_regressors_beat_the_mean(estimator: str, make_ctx: MakeCtx) -> None:
    split = _split(make_ctx, "diabetes", stratify=False)
    trained = train(
        dataset=str(split["train"]),
        estimator=estimator,
        n_estimators=50,
        max_depth=4,
        alpha=0.1,
        ctx=make_ctx(),
    )
    metrics = evaluate_regressor(model=str(trained["model"]), dataset=str(split["test"]), ctx=make_ctx())[
        "metrics"
    ]
    assert metrics["r2"] > 0.25
    test = pd.read_parquet(split["test"])
    model = joblib.load(trained["model"])
    predicted = model.predict(test.drop(columns="target"))
    rmse = float(np.sqrt(np.mean((test["target"] - predicted) ** 2)))
    assert metrics["rmse"] == pytest.approx(rmse)
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(test["target"] - predicted))))
    assert 0 < metrics["mape"] < 1


def test_training_is_deterministic_and_records_metadata(iris_path: str, make_ctx: MakeCtx) -> None:
    first = train(
        dataset=iris_path, estimator="gradient_boosting", n_estimators=20, random_state=3, ctx=make_ctx()
    )
    second = train(
        dataset=iris_path, estimator="gradient_boosting", n_estimators=20, random_state=3, ctx=make_ctx()
    )
    model_a, meta = load_model(first["model"])
    model_b, _ = load_model(second["model"])
    frame = pd.read_parquet(iris_path).drop(columns="target")
    np.testing.assert_array_equal(model_a.predict_proba(frame), model_b.predict_proba(frame))
    assert meta["estimator"] == "gradient_boosting" and meta["task"] == "classification"
    assert meta["target"] == "target" and meta["features"] == list(frame.columns)
    assert meta["params"]["n_estimators"] == 20 and meta["params"]["random_state"] == 3
    assert meta["classes"] == [0, 1, 2]


def test_training_uses_named_features_and_target(make_ctx: MakeCtx) -> None:
    data = load_sklearn_dataset(name="wine", target="cultivar", ctx=make_ctx())["dataset"]
    trained = train(
        dataset=str(data), target="cultivar", features=["alcohol", "proline"], estimator="knn", ctx=make_ctx()
    )
    _, meta = load_model(trained["model"])
    assert meta["features"] == ["alcohol", "proline"] and meta["target"] == "cultivar"
    with pytest.raises(ValueError, match="not_a_column"):
        train(dataset=str(data), target="cultivar", features=["not_a_column"], ctx=make_ctx())
    with pytest.raises(ValueError, match="unknown estimator"):
        train(dataset=str(data), target="cultivar", estimator="deep_net", ctx=make_ctx())


def test_cross_validation(iris_path: str, make_ctx: MakeCtx) -> None:
    named = cross_validate(dataset=iris_path, estimator="logistic_regression", folds=4, ctx=make_ctx())[
        "metrics"
    ]
    assert named["folds"] == 4
    assert named["accuracy_mean"] > 0.9
    assert 0 <= named["accuracy_std"] < 0.1
    assert named["accuracy_min"] <= named["accuracy_mean"] <= named["accuracy_max"]
    trained = train(dataset=iris_path, estimator="decision_tree", max_depth=1, ctx=make_ctx())
    stump = cross_validate(dataset=iris_path, model=str(trained["model"]), scoring="f1_macro", ctx=make_ctx())
    # a depth-1 tree can only separate one of the three species
    assert stump["metrics"]["f1_macro_mean"] < 0.6


def test_time_ordered_cross_validation_on_regression(make_ctx: MakeCtx) -> None:
    data = load_sklearn_dataset(name="diabetes", ctx=make_ctx())["dataset"]
    out = cross_validate(
        dataset=str(data), estimator="ridge", alpha=0.1, shuffle=False, folds=3, scoring="r2", ctx=make_ctx()
    )
    assert out["metrics"]["r2_mean"] > 0.2
