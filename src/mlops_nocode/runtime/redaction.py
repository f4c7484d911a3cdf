"""Redaction: every representation of a secret value that step output can hold, replaced by `***`.

A value is looked for in each form it takes in what the platform stores or sends (see `forms`): as is
and stripped; JSON-escaped (`ensure_ascii` on and off, once and twice); as Python's repr/ascii show it
inside a string; URL-encoded; in base64 and hex (also inside a longer base64 text); and, for a value of
several lines, with its line breaks as `\\n` and each line of at least MIN_FRAGMENT characters on its own.
Values shorter than MIN_REDACTED characters are not looked for: they would blank out ordinary text.

Structured data (events, outputs) is redacted before it is serialised: every string, every key and
every number (by its decimal text) is checked; as a defence in depth, a string whose JSON form still
holds a secret after that is replaced whole. Files are rewritten through a window as long as the longest
form, so an occurrence is found wherever the file's chunks are cut; log lines go through `LineRedactor`,
which looks across as many line breaks as the secrets hold.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, quote_plus

MIN_REDACTED = 4  # shorter values would blank out ordinary text ("x" in every word)
MIN_FRAGMENT = 8  # a line of a multi-line value, or an encoded piece, is looked for from this length
MASK = "***"
FILE_CHUNK = 1024 * 1024


_NUMBER = (int, float)
_SEQUENCE = (list, tuple)
_KEY = (str, int, float)


def _json_inner(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _json_as_is(text: str) -> bool:
    """Whether JSON writes `text` as it is (then its serialised forms need no check of their own)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _escapes(text: str) -> set[str]:
    """`text` as it shows inside serialised strings: JSON (both ways, once and twice), repr, ascii."""
    out = {text, repr(text)[1:-1], ascii(text)[1:-1]}
    for ascii_only in (True, False):
        once = _json_inner(text, ascii_only)
        out |= {once, _json_inner(once, ascii_only)}
    return out


def _base64_cores(data: bytes) -> set[str]:
    """The base64 characters that depend only on `data`, at each of the 3 alignments it can have inside
    a longer encoded text (standard and URL-safe alphabets), and its hex."""
    out = {data.hex()}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + data).decode().rstrip("=")
        core = enc[(8 * k + 5) // 6 : (8 * (k + len(data))) // 6]
        out |= {core, core.replace("+", "-").replace("/", "_")}
    return out


def forms(value: str) -> set[str]:
    """Every form of `value` that is redacted (empty when the value is too short to redact)."""
    out: set[str] = set()
    lines = value.splitlines()
    wholes = {value, value.strip(), "\n".join(lines)}  # log lines are split on any line break
    for whole in wholes:
        if len(whole) >= MIN_REDACTED:
            sp = "surrogatepass"
            urls = {quote(whole, safe="", errors=sp), quote(whole, errors=sp), quote_plus(whole, errors=sp)}
            out |= {f for f in _escapes(whole) | urls if len(f) >= MIN_REDACTED}
            encoded = _base64_cores(whole.encode("utf-8", "surrogatepass"))
            out |= {f for f in encoded if len(f) >= MIN_FRAGMENT}
    if len(lines) > 1:
        for line in lines:
            if len(line.strip()) >= MIN_FRAGMENT:
                out |= _escapes(line.strip())
    return out


class Redactor:
    """Finds and masks the forms of a set of secret values. Falsy when there is nothing to redact."""

    def __init__(self, values: Iterable[str]) -> None:
        values = [v for v in values if len(v) >= MIN_REDACTED]
        patterns: set[str] = set()
        for v in values:
            patterns |= forms(v)
        self.patterns = tuple(sorted(patterns, key=len, reverse=True))
        self.longest = len(self.patterns[0]) if self.patterns else 0
        self.shortest = len(self.patterns[-1]) if self.patterns else 0
        # the most line breaks a secret holds: a log line is masked knowing that many lines around it
        self.span_lines = max((len(v.splitlines()) - 1 for v in values), default=0)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the forms occur in `text` (overlapping occurrences merged), in order."""
        found: list[tuple[int, int]] = []
        if len(text) < self.shortest:
            return found
        for p in self.patterns:
            i = text.find(p)
            while i >= 0:
                found.append((i, i + len(p)))
                i = text.find(p, i + 1)
        if not found:
            return found
        found.sort()
        merged = [found[0]]
        for s, e in found[1:]:
            if s <= merged[-1][1]:
                if e > merged[-1][1]:
                    merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        return merged

    def text(self, text: str) -> str:
        """`text` with every occurrence masked, until none is left (a mask next to text can form a
        secret holding `*`; each round shortens the text, so this ends)."""
        while True:
            spans = self.spans(text) if self.patterns else []
            if not spans:
                return text
            text = _mask(text, spans)

    def data(self, value: Any) -> Any:
        """A copy of JSON-like `value` with every string, key and number that holds a secret redacted
        (other objects are turned into their text first). Too deep to walk: withheld whole."""
        if not self.patterns:
            return value
        try:
            return self._walk(value)
        except RecursionError:
            return MASK

    def _walk(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, _NUMBER):
            return MASK if self.spans(str(value)) else value
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                key = self._walk(k) if isinstance(k, _KEY) else k
                while key in out:  # two keys redacted alike: keep both
                    key = f"{key}'"
                out[key] = self._walk(v)
            return out
        if isinstance(value, _SEQUENCE):
            return [self._walk(v) for v in value]
        text = self.text(value if isinstance(value, str) else str(value))
        if _json_as_is(text):
            return text
        # defence in depth: the string as it will be serialised
        if self.spans(_json_inner(text, True)) or self.spans(_json_inner(text, False)):
            return MASK
        return text


def _mask(text: str, spans: Sequence[tuple[int, int]]) -> str:
    parts, at = [], 0
    for s, e in spans:
        parts += [text[at:s], MASK]
        at = e
    parts.append(text[at:])
    return "".join(parts)


@functools.lru_cache(maxsize=32)
def _cached(values: tuple[str, ...]) -> Redactor:
    return Redactor(values)


def redactor_for(values: Iterable[str]) -> Redactor:
    """The Redactor of these values (built once per set of values)."""
    return _cached(tuple(sorted(set(values))))


class LineRedactor:
    """Redacts a stream of lines (a step's log), a secret of several lines included: each line is masked
    knowing the `span_lines` lines before and after it, so that many lines wait for their followers."""

    def __init__(self, before: Sequence[str] = ()) -> None:
        self._before = list(before)
        self._held: list[str] = []

    def push(self, lines: Sequence[str], redactor: Redactor) -> list[str]:
        """The lines that can be sent now, redacted (the last `span_lines` wait for the next call)."""
        n = redactor.span_lines
        before = self._before[len(self._before) - n :] if n else []
        window = before + self._held + list(lines)
        first, end = len(before), max(len(before), len(window) - n)
        out = _mask_lines(window, first, end, redactor)
        self._before, self._held = (window[max(0, end - n) : end] if n else []), window[end:]
        return out

    def flush(self, redactor: Redactor, after: Sequence[str] = ()) -> list[str]:
        """The lines still waiting, redacted knowing the `after` lines that follow them (if any)."""
        n = redactor.span_lines
        before = self._before[len(self._before) - n :] if n else []
        window = before + self._held + list(after)[:n]
        out = _mask_lines(window, len(before), len(before) + len(self._held), redactor)
        self._before, self._held = [], []
        return out

    def redact_all(self, lines: Sequence[str], redactor: Redactor) -> list[str]:
        """Every line of `lines`, redacted (nothing waits)."""
        return self.push(lines, redactor) + self.flush(redactor)


def _mask_lines(window: list[str], first: int, end: int, redactor: Redactor) -> list[str]:
    """window[first:end], each masked where a form occurs in the window's lines joined by newlines."""
    if not redactor or first >= end:
        return window[first:end]
    joined = "\n".join(window)
    spans = redactor.spans(joined)
    out, start = [], sum(len(line) + 1 for line in window[:first])
    for line in window[first:end]:
        stop = start + len(line)
        mine = [(max(s, start) - start, min(e, stop) - start) for s, e in spans if s < stop and e > start]
        out.append(redactor.text(_mask(line, [(s, e) for s, e in mine if e > s]) if mine else line))
        start = stop + 1
    return out


def redact_files(paths: Iterable[Path], redactor: Redactor) -> None:
    """Rewrite each existing regular file with every secret form masked (streamed; only when something
    changed; links and special files are left alone). The file is read in chunks with an overlap as
    long as the longest form, so no cut hides one."""
    if not redactor:
        return
    for path in paths:
        tmp = path.with_name(path.name + ".redacting")
        with contextlib.suppress(OSError):
            if _redact_stream(path, tmp, redactor):
                os.replace(tmp, path)
        with contextlib.suppress(OSError):
            tmp.unlink()


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file, never through a symbolic link (a step can
    replace its files by a link to /dev/zero, a FIFO or a file of the platform): OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _redact_stream(path: Path, tmp: Path, redactor: Redactor) -> bool:
    changed, carry = False, ""
    with (
        io.TextIOWrapper(open_regular(path), encoding="utf-8", errors="replace", newline="") as src,
        open(tmp, "w", encoding="utf-8", newline="") as dst,
    ):
        while True:
            chunk = src.read(FILE_CHUNK)
            buf = carry + chunk
            cut = len(buf) if not chunk else max(0, len(buf) - (redactor.longest - 1))
            for s, e in redactor.spans(buf):
                if s < cut < e:
                    cut = e
            head = buf[:cut]
            clean = redactor.text(head)
            changed |= clean != head
            dst.write(clean)
            carry = buf[cut:]
            if not chunk:
                return changed
