"""Loading sklearn's bundled datasets and CSV/Parquet tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_nocode.library.datasets import BUNDLED, load_sklearn_dataset, load_table

from .support import MakeCtx

EXPECTED_SHAPES = {
    "iris": (150, 5),
    "wine": (178, 14),
    "breast_cancer": (569, 31),
    "digits": (1797, 65),
    "diabetes": (442, 11),
}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_datasets_load_as_parquet(name: str, make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    path = Path(load_sklearn_dataset(name=name, ctx=ctx)["dataset"])
    assert path.parent == ctx.output_dir and path.suffix == ".parquet"
    frame = pd.read_parquet(path)
    assert frame.shape == EXPECTED_SHAPES[name]
    assert frame.columns[-1] == "target"
    assert not frame.isna().any().any()


def test_target_column_can_be_renamed(make_ctx: MakeCtx) -> None:
    frame = pd.read_parquet(load_sklearn_dataset(name="wine", target="label", ctx=make_ctx())["dataset"])
    assert "label" in frame.columns and "target" not in frame.columns
    assert sorted(frame["label"].unique()) == [0, 1, 2]


def test_unknown_dataset_is_rejected(make_ctx: MakeCtx) -> None:
    with pytest.raises(ValueError, match="california_housing"):
        load_sklearn_dataset(name="california_housing", ctx=make_ctx())


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": [1, 2, 3], "city": ["x", "y", "z"], "label": [0, 1, 0]})


@pytest.mark.parametrize("fmt", ["auto", "csv"])
def test_load_csv(table: pd.DataFrame, tmp_path: Path, make_ctx: MakeCtx, fmt: str) -> None:
    source = tmp_path / "data.csv"
    table.to_csv(source, index=False)
    loaded = pd.read_parquet(
        load_table(path=str(source), format=fmt, target="label", ctx=make_ctx())["dataset"]
    )
    pd.testing.assert_frame_equal(loaded, table)


def test_load_csv_with_separator(table: pd.DataFrame, tmp_path: Path, make_ctx: MakeCtx) -> None:
    source = tmp_path / "data.txt"
    table.to_csv(source, index=False, sep=";")
    loaded = pd.read_parquet(load_table(path=str(source), separator=";", ctx=make_ctx())["dataset"])
    pd.testing.assert_frame_equal(loaded, table)


@pytest.mark.parametrize("fmt", ["auto", "parquet"])
def test_load_parquet(table: pd.DataFrame, tmp_path: Path, make_ctx: MakeCtx, fmt: str) -> None:
    source = tmp_path / "data.parquet"
    table.to_parquet(source, index=False)
    loaded = pd.read_parquet(load_table(path=str(source), format=fmt, ctx=make_ctx())["dataset"])
    pd.testing.assert_frame_equal(loaded, table)


def test_load_table_errors(table: pd.DataFrame, tmp_path: Path, make_ctx: MakeCtx) -> None:
    source = tmp_path / "data.csv"
    table.to_csv(source, index=False)
    with pytest.raises(ValueError, match="target column 'missing'"):
        load_table(path=str(source), target="missing", ctx=make_ctx())
    with pytest.raises(FileNotFoundError):
        load_table(path=str(tmp_path / "nope.csv"), ctx=make_ctx())
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_table(path=str(odd), ctx=make_ctx())
