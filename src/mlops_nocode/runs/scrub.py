"""Masking secrets in what the steps of a dead Runner left on disk.

A Runner masks each step's log, metric file, large result and command value-output files when the step
ends. When its worker dies (kill -9, a crash, the machine), nothing did that for the steps that were
running: whoever recovers the run does it here, with the run's secret values, before the run's folder is
renamed for a new attempt (the worker that claims it again) or when it is given up (the gateway's
recovery thread). Files are rewritten only when a secret form occurs in them; links and special files are
left alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.attempt import VALUE_TYPES
from mlops_nocode.runtime.redaction import Redactor, redact_files

log = logging.getLogger("mlops_nocode.scrub")


def run_folders(home: Path, run_id: str) -> list[Path]:
    """The run's folder and those of its earlier attempts (`<id>.attempt-N`, `<id>.released`...)."""
    runs = home / "runs"
    found = [runs / run_id] if (runs / run_id).is_dir() else []
    with contextlib.suppress(OSError):
        found += sorted(p for p in runs.glob(f"{run_id}.*") if p.is_dir() and not p.is_symlink())
    return found


def _value_paths(plan: dict[str, Any]) -> set[str]:
    """The relative paths command steps write their value outputs to."""
    out: set[str] = set()
    for step in plan.get("steps") or []:
        if isinstance(step, dict) and step.get("runtime") == "command":
            kinds = step.get("outputs") or {}
            for name, rel in ((step.get("command") or {}).get("outputs") or {}).items():
                if kinds.get(name) in VALUE_TYPES and isinstance(rel, str):
                    out.add(rel)
    return out


def _files(folder: Path, value_paths: set[str]) -> Iterator[Path]:
    """The run's own files, each step attempt's files beside its output folder, and the value-output
    files inside those folders (never outside them)."""
    steps = folder / "steps"
    for parent in (folder, steps):
        with contextlib.suppress(OSError):
            yield from (p for p in parent.iterdir() if p.is_file() and not p.is_symlink())
    with contextlib.suppress(OSError):
        for out_dir in (p for p in steps.iterdir() if p.is_dir() and not p.is_symlink()):
            root = out_dir.resolve()
            for rel in value_paths:
                path = out_dir / rel
                with contextlib.suppress(OSError, ValueError):
                    if path.resolve().is_relative_to(root):
                        yield path


def scrub_run_files(home: Path, run_id: str, plan: dict[str, Any], redactor: Redactor) -> int:
    """Mask the secrets in the files every attempt of run `run_id` left under `home`; how many folders."""
    if not redactor:
        return 0
    folders = run_folders(home, run_id)
    value_paths = _value_paths(plan)
    for folder in folders:
        redact_files(list(_files(folder, value_paths)), redactor)
    if folders:
        log.info("masked the secrets in what run %s left in %d folder(s)", run_id, len(folders))
    return len(folders)
