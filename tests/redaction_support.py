"""What "a secret leaked" means in the redaction tests, written independently of the code under test.

A secret value shows when one of its representations occurs: the value itself, its JSON-escaped forms
(`ensure_ascii` on and off), its Python repr, and each line of a multi-line value of at least 8
characters (stripped) with their JSON forms. Values shorter than 4 characters are not redacted (by
design) and are not looked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

NASTY = [
    'pa"ss\\word',
    "tab\there and\ttab",
    "unicode-ünïcødé-密码-🔑",
    "quote'single\"double\\back",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "-----END PRIVATE KEY-----\n",
    "line one\r\nline two\r\nthird line here",
    "control\x01\x02\x1b[31mchars\x7f",
    "x" * 3000,
    "emoji 🙈🙉🙊 and \u2028 separator",
    "%41%42 not url-encoded + plus",
]


def _inner(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def representations(value: str) -> set[str]:
    """The forms of `value` that must never show (empty for values too short to be redacted)."""
    if len(value) < 4:
        return set()
    reps = {value, _inner(value, True), _inner(value, False), repr(value)[1:-1]}
    lines = [line.strip() for line in value.splitlines()]
    if len(lines) > 1:
        for line in lines:
            if len(line) >= 8:
                reps |= {line, _inner(line, True), _inner(line, False)}
    return {r for r in reps if len(r) >= 4}


def secret_values() -> st.SearchStrategy[str]:
    """Any text a secret may hold (no NUL: refused at input), the nasty examples above included."""
    text = st.text(
        alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=4
    )
    lines = st.lists(st.text(min_size=0, max_size=30).filter(lambda s: "\0" not in s), min_size=2).map(
        "\n".join
    )
    return st.one_of(st.sampled_from(NASTY), text, lines.filter(lambda s: len(s) >= 4))


def strings_of(value: Any) -> list[str]:
    """Every string (keys included) and number text in a JSON-like value."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_of(k), *strings_of(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_of(v)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def assert_no_secret_in_data(value: Any, secret: str, where: str = "") -> None:
    """No string of `value` holds a representation of `secret`, as it is or as JSON would write it."""
    reps = representations(secret)
    for s in strings_of(value):
        for form in (s, _inner(s, True), _inner(s, False)):
            for rep in reps:
                assert rep not in form, f"{where}: {rep!r} shows in {s[:300]!r}"


def assert_no_secret_in_text(text: str, secret: str, where: str = "") -> None:
    reps = representations(secret)
    for rep in reps:
        assert rep not in text, f"{where}: {rep!r} shows in {text[:300]!r}"


def assert_no_secret_in_json_lines(path: Path, secret: str) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        assert_no_secret_in_data(json.loads(line), secret, str(path))
