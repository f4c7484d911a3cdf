"""Feature engineering steps: numeric features from server logs, lag/rolling/calendar features for sales."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops_nocode.library.frames import read_dataset, require_columns, write_dataset
from mlops_nocode.runtime.context import StepContext

LOG_INPUT_COLUMNS = ("timestamp", "host", "endpoint", "status", "latency_ms", "bytes")


def _robust_z(values: pd.Series, groups: pd.Series) -> pd.Series:
    """(value - group median) / (1.4826 x group median absolute deviation), guarded against zero spread."""
    median = values.groupby(groups).transform("median")
    mad = (values - median).abs().groupby(groups).transform("median")
    return (values - median) / (1.4826 * mad + 1e-6)


def log_features(
    *, dataset: str, window: int = 20, label_column: str = "is_anomaly", ctx: StepContext
) -> dict[str, Any]:
    """Numeric features per log line, sorted by time.

    Keeps timestamp, host and endpoint (not numeric, so never used as features) and the label column
    when present, and adds: log_latency, log_bytes, latency_z and bytes_z (robust z-scores within the
    endpoint), is_server_error, is_client_error, and per host over the last `window` requests
    host_error_rate and host_latency_z.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    logs = read_dataset(dataset)
    require_columns(logs, LOG_INPUT_COLUMNS, "log column")
    logs = logs.sort_values("timestamp", kind="stable").reset_index(drop=True)
    status = logs["status"].astype("int64")
    out = pd.DataFrame({"timestamp": logs["timestamp"], "host": logs["host"], "endpoint": logs["endpoint"]})
    out["log_latency"] = np.log1p(logs["latency_ms"].astype("float64").clip(lower=0))
    out["log_bytes"] = np.log1p(logs["bytes"].astype("float64").clip(lower=0))
    out["latency_z"] = _robust_z(out["log_latency"], logs["endpoint"])
    out["bytes_z"] = _robust_z(out["log_bytes"], logs["endpoint"])
    out["is_server_error"] = (status >= 500).astype("int64")
    out["is_client_error"] = ((status >= 400) & (status < 500)).astype("int64")
    by_host = out.groupby("host", sort=False)
    out["host_error_rate"] = by_host["is_server_error"].transform(
        lambda s: s.rolling(window, min_periods=1).mean()
    )
    out["host_latency_z"] = by_host["latency_z"].transform(lambda s: s.rolling(window, min_periods=1).mean())
    if label_column and label_column in logs.columns:
        out[label_column] = logs[label_column]
    ctx.log.info("extracted log features for %d lines", len(out))
    return {"dataset": write_dataset(out, ctx, "log_features")}


def sales_features(
    *,
    dataset: str,
    time_column: str = "date",
    target: str = "sales",
    group_columns: Sequence[str] = ("store", "product"),
    lags: Sequence[int] = (1, 7, 14),
    rolling_windows: Sequence[int] = (7, 28),
    calendar: bool = True,
    drop_na: bool = True,
    ctx: StepContext,
) -> dict[str, Any]:
    """Lag, rolling-mean and calendar features of a daily time series, per series (`group_columns`).

    `lag_K` is the target K rows earlier in the same series; `rolling_mean_W` is the mean of the W
    values before the current one (never the current one). Rows lacking a full history are dropped
    when `drop_na` is true. The output is sorted by time, then by group.
    """
    if any(k < 1 for k in lags) or any(w < 1 for w in rolling_windows):
        raise ValueError("lags and rolling_windows must be positive integers")
    frame = read_dataset(dataset)
    groups = list(group_columns)
    require_columns(frame, [time_column, target, *groups], "column")
    frame[time_column] = pd.to_datetime(frame[time_column])
    frame = frame.sort_values([*groups, time_column], kind="stable").reset_index(drop=True)
    series = frame.groupby(groups, sort=False)[target] if groups else frame[target]
    added: list[str] = []
    for k in sorted(set(lags)):
        frame[f"lag_{k}"] = series.shift(k)
        added.append(f"lag_{k}")
    for w in sorted(set(rolling_windows)):
        name = f"rolling_mean_{w}"
        if groups:
            frame[name] = series.transform(lambda s, w=w: s.shift(1).rolling(w, min_periods=w).mean())
        else:
            frame[name] = frame[target].shift(1).rolling(w, min_periods=w).mean()
        added.append(name)
    if calendar:
        when = frame[time_column].dt
        frame["day_of_week"] = when.day_of_week.astype("int64")
        frame["day_of_month"] = when.day.astype("int64")
        frame["day_of_year"] = when.day_of_year.astype("int64")
        frame["month"] = when.month.astype("int64")
        frame["is_weekend"] = (when.day_of_week >= 5).astype("int64")
        frame["days_since_start"] = (frame[time_column] - frame[time_column].min()).dt.days.astype("int64")
    before = len(frame)
    if drop_na and added:
        frame = frame.dropna(subset=added)
    frame = frame.sort_values([time_column, *groups], kind="stable")
    ctx.log.info("added %d lag/rolling features; kept %d of %d rows", len(added), len(frame), before)
    return {"dataset": write_dataset(frame, ctx, "sales_features")}
