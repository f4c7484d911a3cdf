"""Helpers for the monitoring stack's tests: the `mlops` CLI against a given MLOPS_HOME, PromQL through
Prometheus's HTTP API, and a check that the binaries the tests need are installed (they fail, never skip,
without them: CI installs Debian's prometheus and prometheus-alertmanager)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")
BINARIES = ("prometheus", "prometheus-alertmanager")


def need_binaries() -> None:
    """Fail (not skip) when Debian's prometheus or prometheus-alertmanager is missing."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: `apt-get install prometheus prometheus-alertmanager` "
            "(.ci/run does it)",
            pytrace=False,
        )


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mlops ARGS` in a real process with MLOPS_HOME=home."""
    full = {**os.environ, "MLOPS_HOME": str(home), "COLUMNS": "200", **(env or {})}
    full.pop("MLOPS_URL", None)
    full.pop("MLOPS_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=180,
    )


def promql(url: str, query: str) -> list[dict[str, Any]]:
    """The result vector of an instant query."""
    r = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10, trust_env=False)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def poll(what: str, check: Callable[[], T | None], timeout: float = 45.0) -> T:
    """`check()`'s first truthy answer, polled until `timeout`; fails naming `what` and the last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: not seen within {timeout:g}s (last answer: {json.dumps(last)[:2000]})")


def value_of(url: str, query: str) -> float | None:
    """The single sample's value of an instant query, or None when it has no (or several) samples."""
    result = promql(url, query)
    return float(result[0]["value"][1]) if len(result) == 1 else None
