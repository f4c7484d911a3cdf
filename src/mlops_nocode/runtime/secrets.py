"""Secret placeholders (`${{ secrets.NAME }}`): filling them in at the last moment, what a secret's value
may be, and redaction (see runtime.redaction for every form a value is looked for in)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.redaction import MIN_REDACTED, Redactor, redactor_for
from mlops_nocode.runtime.redaction import redact_files as _redact_files

__all__ = [
    "MAX_VALUE_BYTES",
    "MIN_REDACTED",
    "SECRET_RE",
    "Redactor",
    "fill",
    "redact",
    "redact_files",
    "redactor_for",
    "short_warning",
    "value_problem",
]

SECRET_RE = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
MAX_VALUE_BYTES = 64 * 1024  # under the 128 KiB Linux allows one environment variable (MAX_ARG_STRLEN)


def fill(value: Any, secrets: dict[str, str]) -> Any:
    """`value` with every secret placeholder replaced by its value (at any depth)."""
    if isinstance(value, str) and "${{" in value:
        return SECRET_RE.sub(lambda m: secrets.get(m[1], m[0]), value)
    if isinstance(value, dict):
        return {k: fill(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, secrets) for v in value]
    return value


def value_problem(name: str | None, value: str, short: bool = True) -> tuple[str, str] | None:
    """Why `value` cannot be the value of secret `name`, and how to fix it (None when it can): a NUL
    character or a lone surrogate (no environment variable can carry them: every run using it would
    break), more than MAX_VALUE_BYTES, or, with `short`, fewer than MIN_REDACTED characters (it could not
    be redacted). Plain strings: the step process imports this module, and must stay light."""
    subject = f"the value of secret {name!r}" if name else "a secret's value"
    if "\0" in value:
        return (
            f"{subject} holds a NUL character (\\0): no environment variable or "
            "command-line argument can carry it, so every step using it would fail",
            "remove the NUL characters (encode binary values, e.g. in base64, and decode them in the step)",
        )
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return (
            f"{subject} holds a lone surrogate (\\ud800-\\udfff), which is not text",
            "send valid Unicode text (encode binary values, e.g. in base64)",
        )
    if size > MAX_VALUE_BYTES:
        return (
            f"{subject} is {size} bytes long; a secret value is at most {MAX_VALUE_BYTES} bytes (UTF-8)",
            "store large credentials as a file the step reads, and keep the secret for its key",
        )
    if short and len(value) < MIN_REDACTED:
        return (
            f"{subject} has {len(value)} character(s): values shorter than "
            f"{MIN_REDACTED} characters cannot be redacted from logs and outputs (they would blank out "
            "ordinary text), so they would show in clear",
            f"use a value of at least {MIN_REDACTED} characters",
        )
    return None


def short_warning(name: str, value: str) -> str | None:
    """The warning for a secret too short to be redacted (None when it is long enough)."""
    if len(value) >= MIN_REDACTED:
        return None
    return (
        f"warning: secret {name!r} has fewer than {MIN_REDACTED} characters: it is not redacted from "
        "logs, events and outputs (use a longer value)"
    )


def redact(text: str, secrets: dict[str, str]) -> str:
    """`text` with every form of every secret value (of at least MIN_REDACTED characters) masked."""
    return redactor_for(secrets.values()).text(text)


def redact_files(paths: Iterable[Path], secrets: dict[str, str] | Redactor) -> None:
    """Rewrite each existing file with every form of every secret value masked (streamed)."""
    _redact_files(paths, secrets if isinstance(secrets, Redactor) else redactor_for(secrets.values()))
