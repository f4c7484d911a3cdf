"""Shared by the monitoring stack's tests: the shipped folder, and the Debian binaries they run (a test
fails, never skips, when one is missing: CI installs them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus" / "rules"
RULE_TESTS = MONITORING / "prometheus" / "tests"
ALERTMANAGER_YML = MONITORING / "alertmanager" / "alertmanager.yml"
PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def binary(name: str) -> str:
    """The path of a Debian monitoring binary, or a failed test naming the package to install."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: apt-get install {PACKAGES[name]}", pytrace=False)
    return found
