"""Datasets as single Parquet files: reading, writing, and choosing feature columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from mlops_nocode.runtime.context import StepContext


def read_dataset(path: str | Path) -> pd.DataFrame:
    """Read one dataset (a Parquet file) into a DataFrame."""
    return pd.read_parquet(Path(path))


def write_dataset(df: pd.DataFrame, ctx: StepContext, name: str) -> Path:
    """Write `df` as `<output_dir>/<name>.parquet` (no index) and return its path."""
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.output_dir / f"{name}.parquet"
    df.reset_index(drop=True).to_parquet(path, index=False)
    ctx.log.info("wrote %s: %d rows x %d columns", path.name, len(df), df.shape[1])
    return path


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str = "column") -> None:
    """Raise a ValueError naming the available columns when any of `columns` is missing."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} {', '.join(map(repr, missing))} not in the dataset; available columns: "
            + ", ".join(map(str, df.columns))
        )


def feature_columns(
    df: pd.DataFrame, features: Sequence[str] = (), exclude: Iterable[str | None] = ()
) -> list[str]:
    """The named `features`, or else every numeric/boolean column not in `exclude`."""
    if features:
        require_columns(df, features, "feature column")
        return list(features)
    skip = {c for c in exclude if c}
    cols = [
        str(c)
        for c in df.columns
        if c not in skip and (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if not cols:
        raise ValueError(
            "the dataset has no numeric feature columns; name them with the 'features' parameter"
        )
    return cols


def split_xy(df: pd.DataFrame, target: str, features: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.Series]:
    """Feature matrix and label column of a supervised dataset."""
    if not target:
        raise ValueError("a 'target' column name is required for a supervised step")
    require_columns(df, [target], "target column")
    cols = feature_columns(df, features, exclude=[target])
    return df[cols], df[target]
