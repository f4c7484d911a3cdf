"""Helpers for the IaC tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from mlops_nocode.iac.terraform import TerraformRunner


def wait_for(condition: Callable[[], object], what: str, deadline_s: float = 120.0) -> None:
    """Poll `condition` until it is true; fail naming `what` after `deadline_s` seconds."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


needs_terraform = pytest.mark.skipif(
    TerraformRunner.find_binary() is None and not os.environ.get("CI"),
    reason="terraform/tofu not installed (CI fails loudly instead: .ci/run checks for it)",
)
