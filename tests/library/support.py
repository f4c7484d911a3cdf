"""Helpers shared by the library tests."""

from __future__ import annotations

from collections.abc import Callable

from mlops_nocode.runtime.context import StepContext

MakeCtx = Callable[[], StepContext]
