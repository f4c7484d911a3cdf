"""Following a step's log file while the step runs, so its lines become `log` events live.

Only complete lines are read (a line still being written waits for its newline, or for the step's end);
every line is redacted before it leaves, a secret of several lines included: when the secrets hold line
breaks, the last lines read wait for the lines after them (runtime.redaction.LineRedactor). A chatty step
is followed up to `limit` lines; after that only the last lines are sent when it ends, with a line saying
how many were left out (the file keeps all).

Whatever a step prints, following it holds a few MiB at most: the file is read in chunks of READ_CHUNK,
and a line longer than `line_max_bytes` (STEP_LOG_LINE_MAX_BYTES) keeps only its first bytes, ended by a
marker saying how many bytes were cut (an endless line without a newline too: the bytes past the cap are
counted, not kept). So that a secret cut in two leaves no piece of itself, a cut line also loses the
characters before the cut where a secret's form reaching past the cut could begin (the longest form's
length, less one).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from mlops_nocode.runtime.redaction import LineRedactor, Redactor, open_regular, redactor_for

READ_CHUNK = 256 * 1024
READ_PER_POLL = 64 * 1024 * 1024  # a poll reads at most this much, so the Runner's loop goes on meanwhile
LINE_MAX_BYTES = 16 * 1024  # the default of STEP_LOG_LINE_MAX_BYTES
CUT_MARKER = " … [{n} more bytes of this line cut; the step's log file has it whole]"
_ESCAPED = {0xDC80 + i: "\ufffd" for i in range(128)}  # a byte that is no UTF-8, as surrogateescape reads it


class _Line(NamedTuple):
    head: bytes  # its first `cap + 1` bytes at most
    size: int  # its length in bytes, newline excluded


class _Cutter:
    """The line being read: its first `cap + 1` bytes (one more shows it is too long) and its length."""

    def __init__(self, cap: int) -> None:
        self.cap, self.head, self.size = cap, b"", 0

    def add(self, data: bytes) -> None:
        if len(self.head) <= self.cap:
            self.head += data[: self.cap + 1 - len(self.head)]
        self.size += len(data)

    def take(self, data: bytes = b"") -> _Line:
        """The line, ended by `data`; the next one starts empty."""
        self.add(data)
        line = _Line(self.head, self.size)
        self.head, self.size = b"", 0
        return line


def shown(line: _Line, cap: int, redactor: Redactor) -> str:
    """The text of a line as a `log` event holds it (before redaction): cut to `cap` bytes with a marker,
    less the characters where a form of a secret reaching past the cut could begin."""
    if line.size <= cap:
        return line.head.decode("utf-8", "replace")
    kept = line.head[: _char_start(line.head, cap)].decode("utf-8", "surrogateescape")
    if redactor.longest > 1:
        kept = kept[: max(0, len(kept) - (redactor.longest - 1))]
    cut = line.size - len(kept.encode("utf-8", "surrogateescape"))
    return kept.translate(_ESCAPED) + CUT_MARKER.format(n=cut)


def _char_start(data: bytes, at: int) -> int:
    """`at`, moved back to the start of the UTF-8 character it falls in (a cut never splits one)."""
    for i in range(at, max(0, at - 3) - 1, -1):
        if data[i] & 0xC0 != 0x80:
            return i
    return at  # four continuation bytes: data[at] belongs to no character


def _pieces(text: str) -> list[str]:
    return text.splitlines() or [""]


class LogFollower:
    """New lines of one log file since the last call."""

    def __init__(
        self,
        path: Path,
        secrets: Mapping[str, str],
        limit: int = 1000,
        tail: int = 200,
        line_max_bytes: int = LINE_MAX_BYTES,
    ) -> None:
        """`secrets` is read at every call: values added to it later are redacted from then on."""
        self.path, self.secrets, self.limit, self.tail = path, secrets, limit, tail
        self.line_max_bytes = line_max_bytes
        self.offset = 0
        self.sent = 0
        self.skipped = 0
        self._line = _Cutter(line_max_bytes)
        self._lines = LineRedactor()
        self._after: list[str] | None = None  # past the limit: the lines those held back wait for
        self._last: deque[_Line] = deque(maxlen=tail)  # past the limit: the last lines (and context)

    @property
    def redactor(self) -> Redactor:
        return redactor_for(self.secrets.values())

    def poll(self) -> Iterator[str]:
        """Complete lines written since the last call, redacted (none once the limit is reached). Reads
        at most READ_PER_POLL bytes (the rest waits for the next call). Iterate it to its end."""
        if self.sent >= self.limit and self._after is None:
            return
        for chunk in self._chunks(READ_PER_POLL):
            yield from self._feed(chunk)

    def rest(self) -> Iterator[str]:
        """At the step's end: the lines not sent yet — past the limit, a note saying how many are left
        out and the last `tail` lines. Iterate it to its end before the file is rewritten (redacted): it
        reads on from a byte offset."""
        for chunk in self._chunks(None):
            yield from self._feed(chunk)
        if self._line.size:
            yield from self._complete(self._line.take())
        redactor = self.redactor
        after, self._after = self._after or [], None
        yield from self._lines.flush(redactor, after)
        if not self.skipped:
            return
        context = redactor.span_lines
        last = [p for line in self._last for p in _pieces(shown(line, self.line_max_bytes, redactor))]
        lines = last[-(self.tail + context) :] if self.tail else []
        keep = min(self.tail, len(lines))
        before, lines = lines[: len(lines) - keep], lines[len(lines) - keep :]
        left_out = self.skipped - len(lines)
        if left_out > 0:
            yield f"… {left_out} line(s) not shown here (the step's log file has them all)"
        yield from LineRedactor(before).redact_all(lines, redactor)

    def _chunks(self, budget: int | None) -> Iterator[bytes]:
        """What was written since the last read, chunk by chunk: up to the size the file had when this
        began, and at most `budget` bytes."""
        try:
            with open_regular(self.path) as f:
                size = f.seek(0, os.SEEK_END)
                if size < self.offset:  # the file was replaced: start over
                    self.offset, self._line = 0, _Cutter(self.line_max_bytes)
                end = size if budget is None else min(size, self.offset + budget)
                f.seek(self.offset)
                while self.offset < end and (data := f.read(min(READ_CHUNK, end - self.offset))):
                    self.offset += len(data)
                    yield data
        except OSError:
            return

    def _feed(self, chunk: bytes) -> Iterator[str]:
        """The lines a chunk completes: one by one while they are sent (or are the context of those
        held back), then only counted, keeping the last ones."""
        at = 0
        while self.sent < self.limit or self._after is not None:
            end = chunk.find(b"\n", at)
            if end < 0:
                self._line.add(chunk[at:])
                return
            yield from self._complete(self._line.take(chunk[at:end]))
            at = end + 1
        count = chunk.count(b"\n", at)
        if not count:
            self._line.add(chunk[at:])
            return
        first, end = chunk.find(b"\n", at), chunk.rfind(b"\n")
        self._keep([self._line.take(chunk[at:first])])
        if count > 1:  # only the last lines of those between are looked at
            between, room = chunk[first + 1 : end], self._tail_room()
            raws = between.split(b"\n") if count - 1 <= room else between.rsplit(b"\n", room)[1:]
            self._keep([_Line(raw[: self.line_max_bytes + 1], len(raw)) for raw in raws])
        self.skipped += count
        self._line.add(chunk[end + 1 :])

    def _complete(self, line: _Line) -> Iterator[str]:
        """One line read to its end: sent while under the limit; past it, counted and kept for the end."""
        redactor = self.redactor
        pieces = _pieces(shown(line, self.line_max_bytes, redactor))
        if self.sent < self.limit:
            room = self.limit - self.sent
            self.sent += min(room, len(pieces))
            yield from self._lines.push(pieces[:room], redactor)
            if self.sent < self.limit:
                return
            self.skipped += max(0, len(pieces) - room)
            self._after = pieces[room:]
        else:
            self.skipped += 1
            self._keep([line])
            if self._after is not None:
                self._after += pieces
        if self._after is not None and len(self._after) >= redactor.span_lines:
            after, self._after = self._after, None
            yield from self._lines.flush(redactor, after)

    def _tail_room(self) -> int:
        return self.tail + self.redactor.span_lines if self.tail else 0

    def _keep(self, lines: list[_Line]) -> None:
        room = self._tail_room()
        if self._last.maxlen != room:
            self._last = deque(self._last, maxlen=room)
        self._last.extend(lines)
