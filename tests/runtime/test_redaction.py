"""Redaction, property-tested with generated secret values: whatever a value holds (quotes, backslashes,
control characters, line breaks, non-ASCII, emoji, thousands of characters), none of its representations
survives in redacted text, data, log lines (followed live, cut anywhere) or files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_nocode.runtime import redaction
from mlops_nocode.runtime.logfollow import LogFollower
from mlops_nocode.runtime.redaction import MIN_FRAGMENT, LineRedactor, Redactor, redact_files
from mlops_nocode.runtime.secrets import redact, value_problem
from tests.redaction_support import (
    NASTY,
    assert_no_secret_in_data,
    assert_no_secret_in_text,
    representations,
    secret_values,
)

TEXT = st.text(max_size=40)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _dressed(secret: str) -> list[str]:
    """The ways a careless step writes a secret into text."""
    return [
        secret,
        json.dumps({"token": secret}),
        json.dumps({"token": secret}, ensure_ascii=False),
        repr({"token": secret}),
        json.dumps(json.dumps({"token": secret})),
    ]


@FAST
@given(secret=secret_values(), before=TEXT, after=TEXT, style=st.integers(0, 4))
def test_text_holds_no_form_of_the_secret(secret: str, before: str, after: str, style: int) -> None:
    text = before + _dressed(secret)[style] + after
    clean = Redactor([secret]).text(text)
    assert_no_secret_in_text(clean, secret)
    assert clean == Redactor([secret]).text(clean)  # nothing left to find


@FAST
@given(secret=secret_values(), before=TEXT, after=TEXT, other=secret_values())
def test_data_holds_no_form_of_the_secret(secret: str, before: str, after: str, other: str) -> None:
    data = {
        "line": before + secret + after,
        secret: [secret, {"k": f"{before}{secret}"}, 1.5, None, True],
        "json": json.dumps({"t": secret}),
        "nested": {"deeper": [[before + json.dumps(secret, ensure_ascii=False) + after]]},
        "other": other,
    }
    clean = Redactor([secret, other]).data(data)
    assert_no_secret_in_data(clean, secret)
    assert_no_secret_in_data(clean, other)
    for ascii_only in (True, False):  # and in the text that is stored or sent
        assert_no_secret_in_data(json.loads(json.dumps(clean, ensure_ascii=ascii_only)), secret)
    assert set(clean) >= {"line", "json", "nested", "other"}  # ordinary keys are kept


@FAST
@given(secret=secret_values(), before=TEXT, after=TEXT, cuts=st.lists(st.integers(0, 10), max_size=8))
def test_log_lines_pushed_in_any_batches_hold_no_line_of_the_secret(
    secret: str, before: str, after: str, cuts: list[int]
) -> None:
    lines = (before + secret + after).splitlines()
    redactor, window, sent = Redactor([secret]), LineRedactor(), []
    rest = list(lines)
    for cut in cuts:
        sent += window.push(rest[:cut], redactor)
        rest = rest[cut:]
    sent += window.push(rest, redactor) + window.flush(redactor)
    assert len(sent) == len(lines)
    for line in sent:
        assert_no_secret_in_text(line, secret)
    parts = secret.splitlines()
    # the promise for a secret of several lines: each line of at least MIN_FRAGMENT characters is masked on
    # its own (shorter ones would blank out ordinary text); a secret of mask characters would be "found"
    # in the masks themselves
    promised = len(parts) == 1 or any(len(p.strip()) >= MIN_FRAGMENT for p in parts)
    if "*" not in secret and promised and "".join(parts).strip():
        assert_no_secret_in_text("\n".join(sent), "\n".join(parts))


@FAST
@given(secret=secret_values(), before=TEXT, after=TEXT, pieces=st.lists(st.integers(1, 9), max_size=12))
def test_followed_log_written_in_pieces_holds_no_line_of_the_secret(
    tmp_path_factory: pytest.TempPathFactory, secret: str, before: str, after: str, pieces: list[int]
) -> None:
    log = tmp_path_factory.mktemp("follow") / "step.log"
    data = (before + secret + after + "\n" + json.dumps({"t": secret}) + "\n").encode()
    follower = LogFollower(log, {"S": secret}, limit=1000, tail=10)
    sent, at = [], 0
    with open(log, "wb") as w:
        for n in pieces:  # a secret cut by the writer, read between the cuts
            w.write(data[at : at + n])
            w.flush()
            at += n
            sent += follower.poll()
        w.write(data[at:])
    sent += follower.rest()
    for line in sent:
        assert_no_secret_in_text(line, secret)


@FAST
@given(secret=secret_values(), before=TEXT, after=TEXT, chunk=st.integers(1, 64))
def test_files_are_rewritten_without_the_secret_wherever_the_chunks_cut(
    tmp_path_factory: pytest.TempPathFactory, secret: str, before: str, after: str, chunk: int
) -> None:
    path = tmp_path_factory.mktemp("files") / "step.log"
    path.write_text(before + "\n".join(_dressed(secret)) + after, encoding="utf-8", newline="")
    old = redaction.FILE_CHUNK
    redaction.FILE_CHUNK = chunk
    try:
        redact_files([path], Redactor([secret]))
    finally:
        redaction.FILE_CHUNK = old
    assert_no_secret_in_text(path.read_text(encoding="utf-8"), secret)


def test_a_file_without_secrets_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_bytes(b"plain \xff bytes\r\n")
    redact_files([path, tmp_path / "missing"], Redactor(["not-there-1234"]))
    assert path.read_bytes() == b"plain \xff bytes\r\n"


def test_pem_key_lines_are_masked_line_by_line() -> None:
    pem = NASTY[4]
    redactor = Redactor([pem])
    assert [redactor.text(line) for line in pem.splitlines()] == ["***"] * 4
    assert redactor.text(pem) == "***" and redactor.text(pem.strip()) == "***"


@pytest.mark.parametrize("secret", NASTY)
def test_encoded_forms_are_masked(secret: str) -> None:
    redactor = Redactor([secret])
    assert "***" in redactor.text("url " + quote(secret, safe=""))
    b64 = base64.b64encode(("user:" + secret).encode()).decode()  # inside a longer base64 text
    assert secret.encode().hex() not in redactor.text(secret.encode().hex())
    assert redactor.text("Authorization: Basic " + b64) != "Authorization: Basic " + b64


def test_numbers_holding_a_secret_are_masked_other_values_kept() -> None:
    redactor = Redactor(["31415926"])
    assert redactor.data({"pin": 31415926, "f": 31415926.5, "n": 2, "b": True, "z": None}) == {
        "pin": "***",
        "f": "***",
        "n": 2,
        "b": True,
        "z": None,
    }


def test_short_values_are_not_redacted_and_overlapping_secrets_are_masked_whole() -> None:
    assert redact("expected x", {"S": "x"}) == "expected x"
    assert redact("abcdefgh", {"A": "abcd", "B": "cdefgh"}) == "***"


def test_mask_characters_in_a_secret_do_not_bring_it_back() -> None:
    assert Redactor(["a***", "zzzz"]).text("azzzz") == "***"


def test_too_deep_data_is_withheld() -> None:
    deep: list[object] = ["secret-value"]
    for _ in range(5000):
        deep = [deep]
    assert Redactor(["secret-value"]).data({"d": deep}) == "***"


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("with\0nul", "NUL character"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("é" * 40_000, "at most 65536 bytes"),
        ("abc", "cannot be redacted"),
    ],
)
def test_secret_values_no_process_can_take_are_refused(value: str, what: str) -> None:
    problem = value_problem("TOKEN", value)
    assert problem is not None and what in problem[0] and problem[1]
    assert value_problem("TOKEN", "abc", short=False) is None
    assert value_problem("TOKEN", "fine-value") is None


def test_every_representation_in_the_tests_is_a_redacted_form() -> None:
    for secret in NASTY:
        assert representations(secret) <= redaction.forms(secret)
