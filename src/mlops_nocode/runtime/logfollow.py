"""Following a step's log file while the step runs, so its lines become `log` events live.

Only complete lines are read (a line still being written waits for its newline, or for the step's end);
every line is redacted before it leaves, a secret of several lines included: when the secrets hold line
breaks, the last lines read wait for the lines after them (runtime.redaction.LineRedactor). A chatty step
is followed up to `limit` lines; after that only the last lines are sent when it ends, with a line saying
how many were left out (the file keeps all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlops_nocode.runtime.redaction import LineRedactor, Redactor, open_regular, redactor_for

READ_CHUNK = 256 * 1024


class LogFollower:
    """New lines of one log file since the last call."""

    def __init__(self, path: Path, secrets: Mapping[str, str], limit: int = 1000, tail: int = 200) -> None:
        """`secrets` is read at every call: values added to it later are redacted from then on."""
        self.path, self.secrets, self.limit, self.tail = path, secrets, limit, tail
        self.offset = 0
        self.sent = 0
        self.skipped = 0
        self._partial = b""
        self._lines = LineRedactor()

    @property
    def redactor(self) -> Redactor:
        return redactor_for(self.secrets.values())

    def poll(self) -> list[str]:
        """Complete lines written since the last call (none once the limit is reached)."""
        if self.sent >= self.limit:
            return []
        lines = self._read(final=False)
        room = self.limit - self.sent
        self.sent += min(room, len(lines))
        self.skipped += max(0, len(lines) - room)
        out = self._lines.push(lines[:room], self.redactor)
        if self.sent >= self.limit:  # the lines held back are sent now, knowing the lines after them
            out += self._lines.flush(self.redactor, lines[room:])
        return out

    def rest(self) -> list[str]:
        """At the step's end: the lines not sent yet — past the limit, a note saying how many are left
        out and the last `tail` lines. Call it before the file is rewritten (redacted): it reads on from a
        byte offset."""
        redactor, context = self.redactor, self.redactor.span_lines
        if self.sent < self.limit:
            lines = self._read(final=True)
            room = self.limit - self.sent
            self.sent += min(room, len(lines))
            out = self._lines.push(lines[:room], redactor) + self._lines.flush(redactor, lines[room:])
            if len(lines) <= room:
                return out
            self.skipped += len(lines) - room
            shown = lines[room:][-(self.tail + context) :] if self.tail else []
        else:
            out, shown = self._lines.flush(redactor), self._tail_from_offset(context)
        keep = min(self.tail, len(shown))
        before, shown = shown[: len(shown) - keep], shown[len(shown) - keep :]
        left_out = self.skipped - len(shown)
        if left_out > 0:
            out.append(f"… {left_out} line(s) not shown here (the step's log file has them all)")
        return out + LineRedactor(before).redact_all(shown, redactor)

    def _tail_from_offset(self, context: int) -> list[str]:
        """Past the limit: count the lines after the offset (streaming), keeping only the last bytes (the
        last `tail` lines and `context` lines before them)."""
        tail, cut = self._partial, False
        try:
            with open_regular(self.path) as f:
                f.seek(self.offset)
                while chunk := f.read(READ_CHUNK):
                    self.skipped += chunk.count(b"\n")
                    tail += chunk
                    cut = cut or len(tail) > READ_CHUNK
                    tail = tail[-READ_CHUNK:]
        except OSError:
            return []
        if tail and not tail.endswith(b"\n"):
            self.skipped += 1
        lines = tail.decode("utf-8", errors="replace").splitlines()[1 if cut else 0 :]  # a cut first line
        return lines[-(self.tail + context) :] if self.tail else []

    def _read(self, final: bool) -> list[str]:
        """New complete lines; with `final`, the unterminated last line too."""
        chunks: list[bytes] = []
        try:
            with open_regular(self.path) as f:
                size = f.seek(0, os.SEEK_END)
                if size < self.offset:  # the file was replaced: start over
                    self.offset, self._partial = 0, b""
                f.seek(self.offset)
                while True:
                    data = f.read(READ_CHUNK)
                    if not data:
                        break
                    self.offset += len(data)
                    chunks.append(data)
        except OSError:
            return []
        data = self._partial + b"".join(chunks)
        if final:
            self._partial = b""
        else:
            cut = data.rfind(b"\n") + 1
            data, self._partial = data[:cut], data[cut:]
        return data.decode("utf-8", errors="replace").splitlines()
