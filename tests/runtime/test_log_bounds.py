"""Following a step's log holds a few MiB whatever the step prints: long lines are cut to the cap with a
marker saying how many bytes were cut, an endless line without a newline too, and a secret cut in two by
the cap leaves no piece of itself (property-tested with generated secret values)."""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlops_nocode.runtime import logfollow
from mlops_nocode.runtime.logfollow import CUT_MARKER, READ_CHUNK, LogFollower
from tests.redaction_support import assert_no_secret_in_text, secret_values

CAP = 1024
MiB = 1 << 20
MARKER = re.compile(r" … \[(\d+) more bytes of this line cut; the step's log file has it whole\]$")
CHARS = st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _peak(action: Callable[[], list[str]]) -> tuple[list[str], int]:
    """What `action` returns, and the most memory Python held meanwhile (beyond what it held before)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = action()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _cut(kept: str, n: int) -> str:
    return kept + CUT_MARKER.format(n=n)


def test_a_long_line_is_cut_to_the_cap_with_a_marker(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"short\n" + b"x" * 5000 + b"\nafter\n" + b"y" * CAP + b"\n")
    f = LogFollower(log, {}, limit=100, tail=10, line_max_bytes=CAP)
    assert list(f.poll()) == ["short", _cut("x" * CAP, 5000 - CAP), "after", "y" * CAP]


def test_a_cut_never_splits_a_character_and_counts_bytes_exactly(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"a" + "é".encode() * 600 + b"\n" + b"\xff" * 3000 + b"\n")  # byte 1024 is inside an é
    f = LogFollower(log, {}, limit=100, tail=10, line_max_bytes=CAP)
    assert list(f.rest()) == [_cut("a" + "é" * 511, 1201 - 1023), _cut("\ufffd" * CAP, 3000 - CAP)]


def test_an_endless_line_without_a_newline_is_followed_in_bounded_memory(tmp_path: Path) -> None:
    log, block = tmp_path / "log", b"z" * MiB
    f = LogFollower(log, {}, limit=100, tail=10, line_max_bytes=CAP)

    def follow() -> list[str]:
        sent = []
        with open(log, "wb") as w:
            w.write(b"first\n")
            for _ in range(48):  # a line that never ends while the step runs
                w.write(block)
                w.flush()
                sent += f.poll()
        return sent + list(f.rest())

    sent, peak = _peak(follow)
    assert sent == ["first", _cut("z" * CAP, 48 * MiB - CAP)]
    assert peak < 4 * MiB, f"following held {peak / MiB:.1f} MiB"


def test_a_huge_line_read_at_once_is_read_in_bounded_memory(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with open(log, "wb") as w:
        w.write(b"before\n")
        for _ in range(48):
            w.write(b"q" * MiB)
        w.write(b"\nafter")
    f = LogFollower(log, {}, limit=100, tail=10, line_max_bytes=CAP)
    sent, peak = _peak(lambda: list(f.rest()))
    assert sent == ["before", _cut("q" * CAP, 48 * MiB - CAP), "after"]
    assert peak < 4 * MiB, f"following held {peak / MiB:.1f} MiB"


def test_past_the_limit_long_lines_are_counted_and_the_tail_is_cut(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with open(log, "wb") as w:
        w.write(b"a\nb\n")
        for i in range(50):
            w.write(f"L{i} ".encode() + b"w" * 300_000 + b"\n")
        w.write(b"end")
    f = LogFollower(log, {}, limit=2, tail=3, line_max_bytes=CAP)
    sent, peak = _peak(lambda: list(f.poll()) + list(f.rest()))
    assert sent == [
        "a",
        "b",
        "… 48 line(s) not shown here (the step's log file has them all)",
        _cut("L48 " + "w" * (CAP - 4), 300_004 - CAP),
        _cut("L49 " + "w" * (CAP - 4), 300_004 - CAP),
        "end",
    ]
    assert peak < 4 * MiB, f"following held {peak / MiB:.1f} MiB"


def test_a_poll_reads_a_bounded_amount_and_leaves_the_rest_for_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logfollow, "READ_PER_POLL", READ_CHUNK)
    log = tmp_path / "log"
    log.write_bytes(b"v" * (3 * READ_CHUNK) + b"\nlast\n")
    f = LogFollower(log, {}, limit=100, tail=10, line_max_bytes=CAP)
    assert list(f.poll()) == []
    assert f.offset == READ_CHUNK  # a step writing faster than the Runner reads never holds it in a poll
    assert list(f.poll()) == [] and list(f.poll()) == []
    assert list(f.poll()) == [_cut("v" * CAP, 3 * READ_CHUNK - CAP), "last"]


def _single_line_forms(secret: str) -> list[str]:
    """The ways a step writes `secret` on one line: as is, JSON-escaped, as Python's repr shows it."""
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    ]
    return [f for f in forms if len(secret) >= 4 and f.splitlines() == [f]]


def _kept(line: str) -> tuple[str, int]:
    match = MARKER.search(line)
    assert match is not None, line[-200:]
    return line[: match.start()], int(match.group(1))


@FAST
@given(secret=secret_values(), which=st.integers(0, 3), pad=st.integers(0, 40), at=st.integers(0, 10**6))
def test_a_secret_cut_by_the_cap_leaves_no_piece_of_itself(
    tmp_path_factory: pytest.TempPathFactory, secret: str, which: int, pad: int, at: int
) -> None:
    forms = _single_line_forms(secret)
    assume(forms)
    written = forms[which % len(forms)].encode("utf-8", "surrogatepass")
    assume(len(written) > 1)
    cap = pad + 1 + at % (len(written) - 1)  # the cut falls inside the secret
    data = b"\0" * pad + written + b"+" * 50
    log = tmp_path_factory.mktemp("cut") / "step.log"
    log.write_bytes(data + b"\n")
    f = LogFollower(log, {"S": secret}, limit=10, tail=5, line_max_bytes=cap)
    (line,) = list(f.rest())
    kept, n = _kept(line)
    assert set(kept) <= {"\0"}, f"{kept!r} shows a piece of the secret"
    assert n == len(data) - len(kept)
    assert_no_secret_in_text(line, secret)


# every character but NUL and the line breaks str.splitlines knows (generating them only to refuse them
# made Hypothesis give up on its health check)
ONE_LINE = st.characters(
    blacklist_characters="\0\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029", blacklist_categories=("Cs",)
)


@FAST
@given(
    first=st.lists(st.text(ONE_LINE, max_size=30)),
    last=st.text(ONE_LINE, min_size=130),
    at=st.integers(0, 10**6),
)
def test_a_secret_of_several_lines_cut_in_its_last_line_leaves_no_piece(
    tmp_path_factory: pytest.TempPathFactory, first: list[str], last: str, at: int
) -> None:
    assume(all(line.splitlines() == [line] for line in first) and last.splitlines() == [last])
    secret = "\n".join([*first, last])
    written = last.encode()
    cap = 121 + at % (len(written) - 121)  # past every earlier line (30 characters, 120 bytes at most)
    log = tmp_path_factory.mktemp("cut") / "step.log"
    log.write_bytes(secret.encode() + b"+" * 50 + b"\n")
    f = LogFollower(log, {"S": secret}, limit=100, tail=5, line_max_bytes=cap)
    *lines, cut = list(f.rest())
    assert len(lines) == len(first)
    assert _kept(cut)[0] == "", f"{cut[:300]!r} shows a piece of the secret"
    for line in lines:
        assert_no_secret_in_text(line, secret)


def _lines(n: int, width: int) -> Iterator[bytes]:
    for i in range(n):
        yield f"{i:08d} ".encode() + b"p" * width + b"\n"


def test_live_lines_and_tail_keep_their_semantics_with_long_lines(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"".join(_lines(30, 2000)))
    f = LogFollower(log, {}, limit=10, tail=4, line_max_bytes=CAP)
    sent = list(f.poll())
    assert [s[:8] for s in sent] == [f"{i:08d}" for i in range(10)]
    assert all(_kept(s)[1] == 2009 - CAP for s in sent)
    rest = list(f.rest())
    assert rest[0] == "… 16 line(s) not shown here (the step's log file has them all)"
    assert [s[:8] for s in rest[1:]] == [f"{i:08d}" for i in range(26, 30)]
