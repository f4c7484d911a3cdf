"""Secret placeholders (`${{ secrets.NAME }}`): filling them in at the last moment, and redaction."""

from __future__ import annotations

import contextlib
import os
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


MIN_REDACTED = 4  # shorter values would blank out ordinary text ("x" in every word)


def redact(text: str, secrets: dict[str, str]) -> str:
    """`text` with every secret value (of at least MIN_REDACTED characters) replaced by `***`."""
    for value in secrets.values():
        if len(value) >= MIN_REDACTED:
            text = text.replace(value, "***")
    return text


def redact_files(paths: Iterable[Path], secrets: dict[str, str]) -> None:
    """Rewrite each existing file with every secret value replaced by `***`, streaming line by line."""
    if not any(len(v) >= MIN_REDACTED for v in secrets.values()):
        return
    for path in paths:
        tmp = path.with_name(path.name + ".redacting")
        with contextlib.suppress(OSError):
            changed = False
            with (
                open(path, encoding="utf-8", errors="replace") as src,
                open(tmp, "w", encoding="utf-8") as dst,
            ):
                for line in src:
                    clean = redact(line, secrets)
                    changed |= clean != line
                    dst.write(clean)
            if changed:
                os.replace(tmp, path)
        with contextlib.suppress(OSError):
            tmp.unlink()
