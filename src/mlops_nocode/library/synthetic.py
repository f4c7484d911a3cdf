"""Synthetic data generators: web server logs with labelled anomalies, and multi-series daily sales."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_nocode.library.frames import write_dataset
from mlops_nocode.runtime.context import StepContext

# endpoint: (traffic weight, median latency in ms, median response bytes)
ENDPOINTS: dict[str, tuple[float, float, float]] = {
    "/": (0.15, 40.0, 12_000.0),
    "/login": (0.08, 90.0, 2_500.0),
    "/api/users": (0.20, 60.0, 3_500.0),
    "/api/orders": (0.20, 120.0, 8_000.0),
    "/api/search": (0.17, 180.0, 15_000.0),
    "/static/app.js": (0.20, 15.0, 250_000.0),
}
NORMAL_STATUS = np.array([200, 201, 304, 400, 401, 404, 500])
NORMAL_STATUS_P = np.array([0.86, 0.03, 0.04, 0.015, 0.02, 0.03, 0.005])
BURST_STATUS = np.array([500, 502, 503, 504])
LOG_COLUMNS = ["timestamp", "host", "endpoint", "status", "latency_ms", "bytes", "is_anomaly"]
# Relative sales by day of week (Monday first): busy Friday and weekend.
WEEKLY_PROFILE = np.array([-0.6, -0.4, -0.2, 0.0, 0.4, 1.0, 0.8])


def generate_server_logs(
    *,
    n_rows: int = 5000,
    anomaly_fraction: float = 0.03,
    n_hosts: int = 5,
    start: str = "2024-01-01T00:00:00",
    seed: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Web server access logs with a ground-truth `is_anomaly` label.

    Anomalies come in three kinds, in equal shares: bursts of 5xx errors on one host (consecutive
    requests, slow), latency spikes (10-40x the endpoint's usual latency) and oversized responses.
    """
    if n_rows < 10:
        raise ValueError(f"n_rows must be at least 10, got {n_rows}")
    if not 0.0 <= anomaly_fraction <= 0.3:
        raise ValueError(f"anomaly_fraction must be between 0 and 0.3, got {anomaly_fraction}")
    if n_hosts < 1:
        raise ValueError(f"n_hosts must be at least 1, got {n_hosts}")
    rng = np.random.default_rng(seed)
    timestamps = pd.Timestamp(start) + pd.to_timedelta(np.cumsum(rng.exponential(2.0, n_rows)), unit="s")
    host_idx = rng.integers(0, n_hosts, n_rows)
    weights = np.array([w for w, _, _ in ENDPOINTS.values()])
    ep_idx = rng.choice(len(ENDPOINTS), size=n_rows, p=weights / weights.sum())
    latency = np.array([lat for _, lat, _ in ENDPOINTS.values()])[ep_idx] * rng.lognormal(0.0, 0.3, n_rows)
    size = np.array([b for _, _, b in ENDPOINTS.values()])[ep_idx] * rng.lognormal(0.0, 0.25, n_rows)
    status = rng.choice(NORMAL_STATUS, size=n_rows, p=NORMAL_STATUS_P)
    size[status == 304] = rng.normal(200.0, 20.0, int((status == 304).sum()))
    small = status >= 400
    size[small] = rng.normal(600.0, 80.0, int(small.sum()))
    label = np.zeros(n_rows, dtype=bool)

    n_anomalies = round(anomaly_fraction * n_rows)
    n_spike = n_big = n_anomalies // 3
    burst = _bursts(rng, host_idx, n_anomalies - n_spike - n_big, label)
    status[burst] = rng.choice(BURST_STATUS, size=len(burst))
    latency[burst] *= rng.uniform(3.0, 10.0, len(burst))
    size[burst] = rng.normal(300.0, 40.0, len(burst))
    label[burst] = True
    spike = rng.choice(np.flatnonzero(~label), size=n_spike, replace=False)
    latency[spike] *= rng.uniform(10.0, 40.0, n_spike)
    label[spike] = True
    big = rng.choice(np.flatnonzero(~label), size=n_big, replace=False)
    size[big] *= rng.uniform(20.0, 100.0, n_big)
    latency[big] *= rng.uniform(1.5, 3.0, n_big)
    label[big] = True

    frame = pd.DataFrame(
        {
            "timestamp": timestamps,
            "host": np.array([f"web-{i + 1:02d}" for i in range(n_hosts)])[host_idx],
            "endpoint": np.array(list(ENDPOINTS))[ep_idx],
            "status": status.astype("int64"),
            "latency_ms": np.round(latency, 2),
            "bytes": np.maximum(size, 0).round().astype("int64"),
            "is_anomaly": label.astype("int64"),
        },
        columns=LOG_COLUMNS,
    )
    ctx.log.info("generated %d log lines, %d anomalous", n_rows, int(label.sum()))
    return {"dataset": write_dataset(frame, ctx, "logs")}


def _bursts(rng: np.random.Generator, host_idx: np.ndarray, count: int, taken: np.ndarray) -> np.ndarray:
    """Row indices of runs of 8-20 consecutive requests on one host, `count` rows in all, none in `taken`."""
    chosen: list[int] = []
    used = taken.copy()
    by_host = [np.flatnonzero(host_idx == h) for h in range(int(host_idx.max()) + 1)]
    for _attempt in range(10_000):
        if len(chosen) >= count:
            break
        rows = by_host[int(rng.integers(0, len(by_host)))]
        length = min(int(rng.integers(8, 21)), count - len(chosen))
        if len(rows) <= length:
            continue
        begin = int(rng.integers(0, len(rows) - length))
        run = rows[begin : begin + length]
        if used[run].any():
            continue
        used[run] = True
        chosen.extend(int(i) for i in run)
    if len(chosen) < count:  # too crowded for runs: fill with single rows
        extra = rng.choice(np.flatnonzero(~used), size=count - len(chosen), replace=False)
        chosen.extend(int(i) for i in extra)
    return np.array(sorted(chosen), dtype="int64")


def generate_sales(
    *,
    n_days: int = 730,
    n_stores: int = 3,
    n_products: int = 2,
    start_date: str = "2022-01-01",
    base_level: float = 100.0,
    trend: float = 0.05,
    weekly_amplitude: float = 15.0,
    yearly_amplitude: float = 20.0,
    noise: float = 5.0,
    seed: int = 42,
    ctx: StepContext,
) -> dict[str, Any]:
    """Daily sales per store and product: level x (1 + trend, weekly and yearly seasonality) plus noise.

    Each store/product series has its own scale (0.6-1.6 of `base_level`); `trend` is units per day at
    scale 1. Columns: date, store, product, sales (never negative).
    """
    if n_days < 30:
        raise ValueError(f"n_days must be at least 30, got {n_days}")
    if n_stores < 1 or n_products < 1:
        raise ValueError("n_stores and n_products must be at least 1")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(pd.Timestamp(start_date), periods=n_days, freq="D")
    t = np.arange(n_days, dtype="float64")
    weekly = weekly_amplitude * (WEEKLY_PROFILE - WEEKLY_PROFILE.mean())[dates.day_of_week.to_numpy()]
    yearly = yearly_amplitude * np.sin(2.0 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    parts = []
    for store in range(1, n_stores + 1):
        for product in range(1, n_products + 1):
            scale = rng.uniform(0.6, 1.6)
            values = scale * (base_level + trend * t + weekly + yearly) + rng.normal(0.0, noise, n_days)
            parts.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "store": store,
                        "product": product,
                        "sales": np.maximum(values, 0.0).round(2),
                    }
                )
            )
    frame = pd.concat(parts).sort_values(["date", "store", "product"], kind="stable")
    ctx.log.info("generated %d days x %d series of sales", n_days, n_stores * n_products)
    return {"dataset": write_dataset(frame, ctx, "sales")}
