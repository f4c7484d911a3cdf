"""A new MLOPS_HOME is readable by its user only (it holds keys, secrets' ciphertext and run files)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlops_nocode.catalogue.home import mlops_home


def test_new_home_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "fresh" / "home"))
    home = mlops_home()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
