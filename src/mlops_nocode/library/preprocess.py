"""Preprocessing steps: train/test split (random, stratified or time-ordered) and feature scaling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn import model_selection
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from mlops_nocode.library.frames import feature_columns, read_dataset, require_columns, write_dataset
from mlops_nocode.library.modelfile import build_metadata, save_model
from mlops_nocode.runtime.context import StepContext

SCALERS: dict[str, type[Any]] = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


def train_test_split(
    *,
    dataset: str,
    test_size: float = 0.2,
    stratify: bool = False,
    shuffle: bool = True,
    time_column: str = "",
    target: str = "target",
    random_state: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Split a dataset into train and test.

    With `shuffle` false the split is time-ordered: rows are sorted by `time_column` (when given) and
    the last `test_size` share becomes the test set, moved to the start of a timestamp so that rows
    sharing one stay together. `stratify` keeps class proportions
    (shuffled splits only).
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    frame = read_dataset(dataset)
    if len(frame) < 2:
        raise ValueError("the dataset needs at least 2 rows to be split")
    if not shuffle:
        cut = len(frame) - max(1, round(len(frame) * test_size))
        if time_column:
            # sort by time and never let one timestamp straddle the cut (several series share dates)
            require_columns(frame, [time_column], "time column")
            frame = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
            in_test = frame[time_column] >= frame[time_column].iloc[cut]
            train, test = frame[~in_test], frame[in_test]
            if train.empty:
                raise ValueError(
                    f"the test part (test_size={test_size}) starts at the first {time_column!r}, so nothing "
                    "is left to train on: lower test_size or give more rows"
                )
        else:
            train, test = frame.iloc[:cut], frame.iloc[cut:]
    else:
        labels = None
        if stratify:
            require_columns(frame, [target], "target column")
            labels = frame[target]
        train, test = model_selection.train_test_split(
            frame, test_size=test_size, shuffle=True, stratify=labels, random_state=random_state
        )
    ctx.log.info("split %d rows into %d train and %d test", len(frame), len(train), len(test))
    ctx.metric("train_rows", len(train))
    ctx.metric("test_rows", len(test))
    return {"train": write_dataset(train, ctx, "train"), "test": write_dataset(test, ctx, "test")}


def scale_features(
    *,
    train: str,
    test: str,
    method: str = "standard",
    columns: Sequence[str] = (),
    target: str = "target",
    ctx: StepContext,
) -> dict[str, Any]:
    """Fit a scaler on the train set's feature columns and apply it to both train and test."""
    if method not in SCALERS:
        raise ValueError(f"unknown scaling method {method!r}; choose one of {', '.join(SCALERS)}")
    train_frame, test_frame = read_dataset(train), read_dataset(test)
    cols = feature_columns(train_frame, columns, exclude=[target])
    require_columns(test_frame, cols, "feature column")
    scaler = SCALERS[method]()
    scaler.fit(train_frame[cols])
    out_train, out_test = _apply(scaler, train_frame, cols), _apply(scaler, test_frame, cols)
    meta = build_metadata(
        scaler,
        name=f"{method}_scaler",
        task="transform",
        features=cols,
        target=None,
        params={"method": method},
    )
    ctx.log.info("scaled %d columns with %s", len(cols), type(scaler).__name__)
    return {
        "train": write_dataset(out_train, ctx, "train"),
        "test": write_dataset(out_test, ctx, "test"),
        "scaler": save_model(scaler, ctx, meta, "scaler"),
    }


def _apply(scaler: Any, frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = frame.copy()
    out[cols] = scaler.transform(frame[cols]).astype("float64")
    return out
