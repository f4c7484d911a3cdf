"""Where the platform keeps its files: MLOPS_HOME (default ~/.mlops-nocode). Re-exported by runtime.home."""

from __future__ import annotations

import os
from pathlib import Path

from mlops_nocode.spec import Problem, SpecError


class HomeError(SpecError, OSError):
    """MLOPS_HOME cannot be created or written (a file, a read-only or virtual file system...). CLI exit 2.

    Also an OSError, so callers that report file-system failures (writing a run's files) report it too."""


def _unusable(home: Path, reason: str) -> HomeError:
    return HomeError(
        Problem(
            f"MLOPS_HOME {home} is not a usable folder: {reason}",
            "MLOPS_HOME",
            "set MLOPS_HOME to a writable folder (or unset it to use ~/.mlops-nocode)",
        )
    )


def mlops_home() -> Path:
    """MLOPS_HOME, created on first use; a HomeError (a located problem) when it cannot be used."""
    home = Path(os.environ.get("MLOPS_HOME") or Path.home() / ".mlops-nocode").expanduser()
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)  # new homes: this user's only (keys, runs)
    except FileExistsError:
        raise _unusable(home, "it exists and is not a folder") from None
    except OSError as e:
        raise _unusable(home, e.strerror or str(e)) from None
    if not home.is_dir():
        raise _unusable(home, "it is not a folder")
    if not os.access(home, os.W_OK | os.X_OK):
        raise _unusable(home, "it is not writable")
    return home
