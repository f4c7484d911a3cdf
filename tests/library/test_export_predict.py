"""Model export (model + card) and batch prediction."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LinearRegression

from mlops_nocode.library.export import export_model
from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.predict import batch_predict
from mlops_nocode.library.train import train

from .support import MakeCtx


@pytest.fixture
def iris_model(iris_path: str, make_ctx: MakeCtx) -> str:
    return str(train(dataset=iris_path, estimator="logistic_regression", ctx=make_ctx())["model"])


def test_export_writes_loadable_model_and_card(iris_model: str, iris_path: str, make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    metrics_file = ctx.output_dir / "metrics.json"
    metrics_file.write_text(json.dumps({"accuracy": 0.97, "f1_macro": 0.96, "note": "ignored"}))
    out = export_model(
        model=iris_model,
        metrics=str(metrics_file),
        name="iris",
        version="2.1.0",
        description="d",
        ctx=make_ctx(),
    )
    bundle = Path(out["bundle"])
    assert bundle.is_dir() and sorted(p.name for p in bundle.iterdir()) == ["model.joblib", "model_card.json"]
    card = json.loads((bundle / "model_card.json").read_text())
    assert card["name"] == "iris" and card["version"] == "2.1.0" and card["description"] == "d"
    assert card["task"] == "classification" and card["estimator"] == "logistic_regression"
    assert card["metrics"] == {"accuracy": 0.97, "f1_macro": 0.96}
    assert card["sklearn_version"] == sklearn.__version__
    assert card["params"]["C"] == 1.0 and card["created"]
    frame = pd.read_parquet(iris_path)
    assert card["features"] == [c for c in frame.columns if c != "target"]
    exported = joblib.load(bundle / "model.joblib")
    original = joblib.load(iris_model)
    np.testing.assert_array_equal(
        exported.predict(frame[card["features"]]), original.predict(frame[card["features"]])
    )


def test_export_without_metrics(iris_model: str, make_ctx: MakeCtx) -> None:
    card = json.loads(
        (Path(export_model(model=iris_model, ctx=make_ctx())["bundle"]) / "model_card.json").read_text()
    )
    assert card["metrics"] == {} and card["name"] == "model"


def test_batch_prediction_matches_model(iris_model: str, iris_path: str, make_ctx: MakeCtx) -> None:
    out = pd.read_parquet(batch_predict(model=iris_model, dataset=iris_path, ctx=make_ctx())["predictions"])
    frame = pd.read_parquet(iris_path)
    model = joblib.load(iris_model)
    features = frame.drop(columns="target")
    np.testing.assert_array_equal(out["prediction"], model.predict(features))
    probas = out[["proba_0", "proba_1", "proba_2"]].to_numpy()
    np.testing.assert_allclose(probas, model.predict_proba(features))
    np.testing.assert_allclose(probas.sum(axis=1), 1.0)
    pd.testing.assert_frame_equal(out[frame.columns], frame)
    # the label column is not needed to predict
    unlabeled = make_ctx().output_dir / "unlabeled.parquet"
    features.to_parquet(unlabeled)
    bare = batch_predict(
        model=iris_model,
        dataset=str(unlabeled),
        prediction_column="species",
        probabilities=False,
        ctx=make_ctx(),
    )
    bare_out = pd.read_parquet(bare["predictions"])
    assert list(bare_out.columns) == [*features.columns, "species"]
    np.testing.assert_array_equal(bare_out["species"], out["prediction"])


def test_plain_sklearn_model_without_metadata(make_ctx: MakeCtx) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]})
    ctx = make_ctx()
    joblib.dump(LinearRegression().fit(frame[["x"]], frame["y"]), ctx.output_dir / "plain.joblib")
    frame.to_parquet(ctx.output_dir / "data.parquet")
    _, meta = load_model(ctx.output_dir / "plain.joblib")
    assert (
        meta["task"] == "regression" and meta["features"] == ["x"] and meta["estimator"] == "LinearRegression"
    )
    out = batch_predict(
        model=str(ctx.output_dir / "plain.joblib"),
        dataset=str(ctx.output_dir / "data.parquet"),
        ctx=make_ctx(),
    )
    np.testing.assert_allclose(pd.read_parquet(out["predictions"])["prediction"], frame["y"])


def test_missing_feature_is_reported(iris_model: str, make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    pd.DataFrame({"petal length (cm)": [1.0]}).to_parquet(ctx.output_dir / "partial.parquet")
    with pytest.raises(ValueError, match="sepal length"):
        batch_predict(model=iris_model, dataset=str(ctx.output_dir / "partial.parquet"), ctx=make_ctx())
