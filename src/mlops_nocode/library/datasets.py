"""Steps that bring data in: scikit-learn's bundled toy datasets and CSV/Parquet tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn import datasets as skdatasets

from mlops_nocode.library.frames import require_columns, write_dataset
from mlops_nocode.runtime.context import StepContext

# Only datasets shipped inside scikit-learn: nothing is ever downloaded.
BUNDLED: dict[str, Callable[..., Any]] = {
    "iris": skdatasets.load_iris,
    "wine": skdatasets.load_wine,
    "breast_cancer": skdatasets.load_breast_cancer,
    "digits": skdatasets.load_digits,
    "diabetes": skdatasets.load_diabetes,
}


def load_sklearn_dataset(*, name: str = "iris", target: str = "target", ctx: StepContext) -> dict[str, Any]:
    """Load one of scikit-learn's bundled datasets as a dataset with its label in column `target`."""
    if name not in BUNDLED:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUNDLED)}")
    bunch = BUNDLED[name](as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if "target" in frame.columns and target != "target":
        if target in frame.columns:
            raise ValueError(f"target name {target!r} clashes with a feature column of {name}")
        frame = frame.rename(columns={"target": target})
    ctx.log.info("loaded sklearn dataset %s: %d rows, %d features", name, len(frame), frame.shape[1] - 1)
    return {"dataset": write_dataset(frame, ctx, "dataset")}


def load_table(
    *, path: str, format: str = "auto", target: str = "", separator: str = ",", ctx: StepContext
) -> dict[str, Any]:
    """Load a CSV or Parquet file into a dataset; when `target` is set, that column must exist."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"no file at {source}")
    kind = format
    if kind == "auto":
        suffix = source.suffix.lower()
        if suffix in (".parquet", ".pq"):
            kind = "parquet"
        elif suffix in (".csv", ".txt", ".tsv"):
            kind = "csv"
        else:
            raise ValueError(f"cannot tell the format of {source.name}; set format to csv or parquet")
    if kind == "csv":
        frame = pd.read_csv(
            source, sep="\t" if source.suffix.lower() == ".tsv" and separator == "," else separator
        )
    elif kind == "parquet":
        frame = pd.read_parquet(source)
    else:
        raise ValueError(f"unknown format {format!r}; use auto, csv or parquet")
    frame.columns = [str(c) for c in frame.columns]
    if target:
        require_columns(frame, [target], "target column")
    ctx.log.info("loaded %s (%s): %d rows x %d columns", source.name, kind, len(frame), frame.shape[1])
    return {"dataset": write_dataset(frame, ctx, "dataset")}
