"""Secret placeholders (`${{ secrets.NAME }}`): filling them in at the last moment, and redaction."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SECRET_RE = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")


def fill(value: Any, secrets: dict[str, str]) -> Any:
    """`value` with every secret placeholder replaced by its value (at any depth)."""
    if isinstance(value, str) and "${{" in value:
        return SECRET_RE.sub(lambda m: secrets.get(m[1], m[0]), value)
    if isinstance(value, dict):
        return {k: fill(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, secrets) for v in value]
    return value


def redact(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value replaced by `***`."""
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def redact_files(paths: Iterable[Path], secrets: dict[str, str]) -> None:
    """Rewrite each existing file with every secret value replaced by `***`."""
    if not secrets:
        return
    for path in paths:
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8", errors="replace")
            clean = redact(text, secrets)
            if clean != text:
                path.write_text(clean, encoding="utf-8")
