"""Fixtures for the built-in library tests: step contexts and small datasets."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mlops_nocode.library.datasets import load_sklearn_dataset
from mlops_nocode.runtime.context import StepContext

from .support import MakeCtx


@pytest.fixture
def make_ctx(tmp_path: Path) -> MakeCtx:
    """A factory of StepContexts, each with its own empty output directory under tmp_path."""
    counter = itertools.count(1)

    def make() -> StepContext:
        n = next(counter)
        out = tmp_path / f"step{n}"
        out.mkdir()
        return StepContext(step_id=f"step{n}", run_id="test-run", output_dir=out)

    return make


@pytest.fixture
def iris_path(make_ctx: MakeCtx) -> str:
    return str(load_sklearn_dataset(name="iris", ctx=make_ctx())["dataset"])
