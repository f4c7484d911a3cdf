"""Helpers for the IaC tests."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], what: str, deadline_s: float = 120.0) -> None:
    """Poll `condition` until it is true; fail naming `what` after `deadline_s` seconds."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
