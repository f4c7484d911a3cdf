"""Synthetic sales, lag/calendar features and a time-ordered forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_nocode.library.evaluate import evaluate_regressor
from mlops_nocode.library.features import sales_features
from mlops_nocode.library.preprocess import train_test_split
from mlops_nocode.library.synthetic import generate_sales
from mlops_nocode.library.train import train

from .support import MakeCtx


@pytest.fixture
def sales_path(make_ctx: MakeCtx) -> str:
    return str(generate_sales(n_days=400, n_stores=2, n_products=2, seed=5, ctx=make_ctx())["dataset"])


def test_generated_sales(sales_path: str) -> None:
    sales = pd.read_parquet(sales_path)
    assert list(sales.columns) == ["date", "store", "product", "sales"]
    assert len(sales) == 400 * 4 and (sales["sales"] >= 0).all()
    one = sales[(sales["store"] == 1) & (sales["product"] == 1)].set_index("date")["sales"]
    weekly = one.groupby(one.index.day_of_week).mean()
    assert weekly[5] > weekly[0] + 10  # busy Saturdays
    assert one.iloc[-60:].mean() > one.iloc[:60].mean() - 30  # trend is upward overall


def test_lag_features_never_look_ahead(sales_path: str, make_ctx: MakeCtx) -> None:
    feats = pd.read_parquet(sales_features(dataset=sales_path, ctx=make_ctx())["dataset"])
    sales = pd.read_parquet(sales_path)
    assert len(feats) == (400 - 28) * 4
    assert feats["date"].is_monotonic_increasing
    series = sales[(sales["store"] == 2) & (sales["product"] == 1)].set_index("date")["sales"]
    rows = feats[(feats["store"] == 2) & (feats["product"] == 1)].set_index("date")
    day = rows.index[10]
    assert rows.loc[day, "lag_1"] == series.shift(1)[day]
    assert rows.loc[day, "lag_7"] == series.shift(7)[day]
    assert rows.loc[day, "rolling_mean_7"] == pytest.approx(series.loc[:day].iloc[-8:-1].mean())
    assert rows.loc[day, "day_of_week"] == day.day_of_week
    assert not feats.filter(like="lag_").isna().any().any()


def test_sales_features_single_series_and_options(make_ctx: MakeCtx) -> None:
    frame = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=20), "y": np.arange(20.0)})
    ctx = make_ctx()
    frame.to_parquet(ctx.output_dir / "in.parquet")
    out = sales_features(
        dataset=str(ctx.output_dir / "in.parquet"), time_column="day", target="y", group_columns=[],
        lags=[2], rolling_windows=[3], calendar=False, drop_na=False, ctx=make_ctx(),
    )  # fmt: skip
    feats = pd.read_parquet(out["dataset"])
    assert list(feats.columns) == ["day", "y", "lag_2", "rolling_mean_3"]
    assert feats["lag_2"].iloc[5] == 3.0 and feats["rolling_mean_3"].iloc[5] == 3.0
    assert feats["lag_2"].isna().sum() == 2


@pytest.mark.parametrize("estimator", ["gradient_boosting_regressor", "ridge"])
def test_forecast_beats_r2_half(sales_path: str, make_ctx: MakeCtx, estimator: str) -> None:
    feats = sales_features(dataset=sales_path, ctx=make_ctx())["dataset"]
    split = train_test_split(
        dataset=str(feats), shuffle=False, time_column="date", test_size=0.2, target="sales", ctx=make_ctx()
    )
    assert pd.read_parquet(split["train"])["date"].max() < pd.read_parquet(split["test"])["date"].min()
    trained = train(
        dataset=str(split["train"]), estimator=estimator, target="sales", n_estimators=50, ctx=make_ctx()
    )
    metrics = evaluate_regressor(model=str(trained["model"]), dataset=str(split["test"]), ctx=make_ctx())[
        "metrics"
    ]
    assert metrics["r2"] > 0.5
    assert metrics["mape"] < 0.2
