"""The plain values of the spec: patterns of names, paths and quantities, durations and timeouts, and the
error a field validator raises when it knows the fix. Imports nothing else of ours."""

from __future__ import annotations

import math
import re
from typing import Any

# The patterns below are also put in the exported JSON Schema (spec/schema.py).
DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
CONNECTION_RE = re.compile(r"^(inputs|[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.[A-Za-z_][A-Za-z0-9_-]*$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
ENTRYPOINT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
FUNCTION_RE = re.compile(r"^[A-Za-z_]\w*$")
RELATIVE_PATH_RE = re.compile(r"^(?=.*\S)(?![/~]|[A-Za-z]:)(?!(.*/)?\.\.(/|$))[^\\\x00-\x1f]+$")


_MEMORY_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def memory_bytes(text: str) -> int:
    """Bytes of a memory quantity as specs write it (`512Mi`, `2G`, `1.5Gi`); ValueError otherwise."""
    m = re.match(r"^(\d+(?:\.\d+)?)([KMGT]i?)?$", text)
    if not m:
        raise ValueError(f"invalid memory {text!r}")
    return int(float(m[1]) * _MEMORY_UNITS[m[2] or ""])


def check_relative_path(path: str) -> str:
    """Why `path` is not a safe path relative to a spec's folder ("" when it is): it must be relative,
    stay inside the folder (no `..`), and be plain text."""
    if not path.strip():
        return "is empty: give a path relative to the spec file's folder"
    if "\0" in path or "\\" in path or any(ord(c) < 32 for c in path):
        return "holds a control character or a backslash: write a plain relative path with /"
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", path):
        return "is absolute: write it relative to the spec file's folder"
    if ".." in path.split("/"):
        return "leaves the spec file's folder (..): ship only files inside it"
    return ""


def relative_path(path: str) -> str:
    problem = check_relative_path(path)
    if problem:
        raise ValueError(f"{path!r} {problem}")
    return path


PORT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
"""Names of inputs, outputs and secrets: what `${{ inputs.X }}` and `STEP.OUTPUT` can refer to."""
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TIMEOUT = 366 * 24 * 3600.0
"""The longest timeout a step may have (a year): longer ones are refused rather than overflowing a clock."""
_TIMEOUT_FIX = "give a positive duration such as 30s, 10m or 2h, or leave timeout out for no time limit"


class SpecValueError(ValueError):
    """A field validator's complaint that knows how to fix it (the loader shows `fix`)."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.fix = fix


def parse_duration(value: str | float | int) -> float:
    """Seconds from `90`, `1.5`, `500ms`, `30s`, `10m` or `2h`."""
    if isinstance(value, int | float):
        return float(value)
    m = DURATION_RE.fullmatch(value.strip())
    if not m:
        raise ValueError(f"invalid duration {value!r}: use seconds or a number with ms, s, m or h (e.g. 10m)")
    return float(m[1]) * _DURATION_UNITS[m[2]]


def check_timeout(value: str | float | None) -> str | float | None:
    """`value` when it is a usable timeout: a duration above 0 and at most MAX_TIMEOUT (None: no limit)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SpecValueError(f"timeout {value!r} is not a duration", _TIMEOUT_FIX)
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise SpecValueError(str(e), _TIMEOUT_FIX) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise SpecValueError(
            f"timeout {value!r} is not above 0 (a timeout of 0 would not mean 'no limit')", _TIMEOUT_FIX
        )
    if seconds > MAX_TIMEOUT:
        raise SpecValueError(f"timeout {value!r} is longer than a year", _TIMEOUT_FIX)
    return value


def check_names(kind: str, names: Any, pattern: re.Pattern[str] = PORT_NAME_RE) -> None:
    for name in names:
        if not pattern.fullmatch(name):
            raise SpecValueError(
                f"invalid {kind} name {name[:60]!r}",
                f"use letters, digits, '_'{' and -' if pattern is PORT_NAME_RE else ''}, "
                "starting with a letter or '_'",
            )
