"""Metrics and JSON values returned by steps: finite floats, plain Python types."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlops_nocode.runtime.context import StepContext


def report_metrics(ctx: StepContext, metrics: Mapping[str, float | int]) -> dict[str, float]:
    """Report each metric through `ctx.metric` and return them as a flat dict of finite floats."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        number = float(value)
        if not math.isfinite(number):
            ctx.log.warning("metric %s is not finite (%s); left out", name, number)
            continue
        out[name] = number
        ctx.metric(name, number)
    ctx.log.info("metrics: %s", ", ".join(f"{k}={v:.4g}" for k, v in out.items()))
    return out


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars/arrays and other non-JSON types turned into plain Python values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_metrics_input(path: str | Path) -> dict[str, float]:
    """The numeric entries of a metrics input: a JSON object file (nested `metrics`/`value` accepted)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("metrics", "value"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ValueError(f"metrics input {path} does not hold a JSON object")
    return {
        str(k): float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }
