"""What of an attempt's outputs the Runner masks secrets in: its value outputs before they are stored,
and the files a command step wrote them to (a step's file outputs are its data, kept as written)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.attempt import VALUE_TYPES, Attempt, StepFailure
from mlops_nocode.runtime.redaction import Redactor


def masked_values(a: Attempt, raw: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """`raw` outputs with the secrets masked in the value outputs (paths are kept as they are). A metric
    holding a secret's digits cannot be masked in a number: StepFailure."""
    if not redactor:
        return raw
    out = dict(raw)
    for name, value in raw.items():
        kind = a.step.outputs.get(name)
        if kind in VALUE_TYPES:
            out[name] = redactor.data(value)
            if kind == "metrics" and out[name] != value:
                raise StepFailure(
                    f"output {name!r} (metrics): a metric's name or value holds the value of a secret, "
                    "which cannot be masked in a number: leave secrets out of metrics"
                )
    return out


def value_files(a: Attempt) -> list[Path]:
    """The files a command or container step wrote its value outputs to (inside its output folder only)."""
    if a.files is None:
        return []
    files = []
    for name, rel in a.files.items():
        path = a.out_dir / str(rel)
        with contextlib.suppress(OSError, ValueError):
            if a.step.outputs.get(name) in VALUE_TYPES and path.resolve().is_relative_to(a.out_dir.resolve()):
                files.append(path)
    return files
