"""Following a step's log file while the step runs, so its lines become `log` events live.

Only complete lines are read (a line still being written waits for its newline, or for the step's end);
every line is redacted before it leaves. A chatty step is followed up to `limit` lines; after that only
the last lines are sent when it ends, with a line saying how many were left out (the file keeps all).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_nocode.runtime.secrets import redact

READ_CHUNK = 256 * 1024


class LogFollower:
    """New lines of one log file since the last call."""

    def __init__(self, path: Path, secrets: dict[str, str], limit: int = 1000, tail: int = 200) -> None:
        self.path, self.secrets, self.limit, self.tail = path, secrets, limit, tail
        self.offset = 0
        self.sent = 0
        self.skipped = 0
        self._partial = b""

    def poll(self) -> list[str]:
        """Complete lines written since the last call (none once the limit is reached)."""
        if self.sent >= self.limit:
            return []
        lines = self._read(final=False)
        room = self.limit - self.sent
        self.sent += min(room, len(lines))
        self.skipped += max(0, len(lines) - room)
        return [redact(line, self.secrets) for line in lines[:room]]

    def rest(self) -> list[str]:
        """At the step's end: the lines not sent yet — past the limit, a note saying how many are left
        out and the last `tail` lines. Call it before the file is rewritten (redacted): it reads on from a
        byte offset."""
        if self.sent < self.limit:
            lines = self._read(final=True)
            room = self.limit - self.sent
            self.sent += min(room, len(lines))
            out = [redact(line, self.secrets) for line in lines[:room]]
            if len(lines) <= room:
                return out
            self.skipped += len(lines) - room
            shown = lines[room:][-self.tail :] if self.tail else []
        else:
            out, shown = [], self._tail_from_offset()
        left_out = self.skipped - len(shown)
        if left_out > 0:
            out.append(f"… {left_out} line(s) not shown here (the step's log file has them all)")
        return out + [redact(line, self.secrets) for line in shown]

    def _tail_from_offset(self) -> list[str]:
        """Past the limit: count the lines after the offset (streaming), keeping only the last bytes."""
        tail, cut = self._partial, False
        try:
            with open(self.path, "rb") as f:
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
        return lines[-self.tail :] if self.tail else []

    def _read(self, final: bool) -> list[str]:
        """New complete lines; with `final`, the unterminated last line too."""
        chunks: list[bytes] = []
        try:
            with open(self.path, "rb") as f:
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
