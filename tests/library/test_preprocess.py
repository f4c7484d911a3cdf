"""Train/test split and feature scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.preprocess import scale_features, train_test_split

from .support import MakeCtx


def test_stratified_split_keeps_class_shares(iris_path: str, make_ctx: MakeCtx) -> None:
    out = train_test_split(dataset=iris_path, test_size=0.2, stratify=True, ctx=make_ctx())
    train, test = pd.read_parquet(out["train"]), pd.read_parquet(out["test"])
    assert (len(train), len(test)) == (120, 30)
    assert test["target"].value_counts().tolist() == [10, 10, 10]
    full = pd.read_parquet(iris_path)
    merged = pd.concat([train, test]).sort_values(list(full.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, full.sort_values(list(full.columns)).reset_index(drop=True))


def test_split_is_deterministic_per_seed(iris_path: str, make_ctx: MakeCtx) -> None:
    def test_rows(seed: int) -> pd.DataFrame:
        return pd.read_parquet(train_test_split(dataset=iris_path, random_state=seed, ctx=make_ctx())["test"])

    pd.testing.assert_frame_equal(test_rows(7), test_rows(7))
    assert not test_rows(7).equals(test_rows(8))


def test_time_ordered_split(make_ctx: MakeCtx) -> None:
    dates = pd.date_range("2024-01-01", periods=50, freq="D")
    frame = pd.DataFrame({"date": dates[::-1], "value": np.arange(50.0)})
    ctx = make_ctx()
    source = ctx.output_dir / "in.parquet"
    frame.to_parquet(source)
    out = train_test_split(
        dataset=str(source), shuffle=False, time_column="date", test_size=0.2, ctx=make_ctx()
    )
    train, test = pd.read_parquet(out["train"]), pd.read_parquet(out["test"])
    assert (len(train), len(test)) == (40, 10)
    assert train["date"].max() < test["date"].min()
    assert test["date"].is_monotonic_increasing


def test_split_rejects_bad_test_size(iris_path: str, make_ctx: MakeCtx) -> None:
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(dataset=iris_path, test_size=1.5, ctx=make_ctx())


@pytest.mark.parametrize("method", ["standard", "minmax", "robust"])
def test_scaler_fits_on_train_only(iris_path: str, make_ctx: MakeCtx, method: str) -> None:
    split = train_test_split(dataset=iris_path, ctx=make_ctx())
    out = scale_features(train=str(split["train"]), test=str(split["test"]), method=method, ctx=make_ctx())
    raw_train, raw_test = pd.read_parquet(split["train"]), pd.read_parquet(split["test"])
    train, test = pd.read_parquet(out["train"]), pd.read_parquet(out["test"])
    features = [c for c in raw_train.columns if c != "target"]
    assert train["target"].tolist() == raw_train["target"].tolist()
    if method == "standard":
        np.testing.assert_allclose(train[features].mean(), 0.0, atol=1e-9)
        np.testing.assert_allclose(train[features].std(ddof=0), 1.0, atol=1e-9)
        expected = (raw_test[features] - raw_train[features].mean()) / raw_train[features].std(ddof=0)
        np.testing.assert_allclose(test[features], expected, atol=1e-9)
    elif method == "minmax":
        np.testing.assert_allclose(train[features].min(), 0.0, atol=1e-12)
        np.testing.assert_allclose(train[features].max(), 1.0, atol=1e-12)
    else:
        np.testing.assert_allclose(train[features].median(), 0.0, atol=1e-9)
    scaler, meta = load_model(out["scaler"])
    assert meta["task"] == "transform" and meta["features"] == features
    np.testing.assert_allclose(scaler.transform(raw_test[features]), test[features], atol=1e-9)
