"""Where the platform keeps its files: MLOPS_HOME (default ~/.mlops-nocode). Re-exported by runtime.home."""

from __future__ import annotations

import os
from pathlib import Path


def mlops_home() -> Path:
    """MLOPS_HOME, created on first use."""
    home = Path(os.environ.get("MLOPS_HOME") or Path.home() / ".mlops-nocode").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
