"""The spec documents in a model's answer, read as untrusted text: its size is checked before anything
is parsed, YAML anchors, aliases and tags are refused (no alias bomb can expand), and the text is then
read by the spec layer's strict reader (no dates, no duplicate keys)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.yamlio import parse_texts

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

WHERE = "answer"
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_SPEC_LANGS = {"", "yaml", "yml", "json"}


def spec_text(answer: str, max_bytes: int) -> str:
    """The spec part of an answer: its fenced YAML/JSON blocks (joined as documents), else all of it.
    Refused, unparsed, when the answer is larger than `max_bytes`."""
    size = len(answer.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise SpecError(
            Problem(
                f"the model's answer is {size} bytes, more than ASSISTANT_MAX_ANSWER_BYTES ({max_bytes}): "
                "it was not read",
                WHERE,
                "ask for a smaller spec (fewer steps), or raise ASSISTANT_MAX_ANSWER_BYTES",
            )
        )
    blocks = [body for lang, body in _FENCE.findall(answer) if lang.lower() in _SPEC_LANGS]
    text = "\n---\n".join(b.strip("\n") for b in blocks if b.strip()) if blocks else answer
    if not text.strip():
        raise SpecError(Problem("the answer holds no spec", WHERE, "answer with one fenced ```yaml block"))
    return text


def _no_aliases(text: str) -> None:
    try:
        for token in yaml.scan(text, Loader=_Loader):
            if isinstance(token, yaml.AliasToken | yaml.AnchorToken):
                kind = "alias" if isinstance(token, yaml.AliasToken) else "anchor"
                raise SpecError(
                    Problem(
                        f"the answer uses a YAML {kind} (line {token.start_mark.line + 1}): refused",
                        WHERE,
                        "write every value out in full, without &anchors and *aliases",
                    )
                )
            if isinstance(token, yaml.TagToken):
                raise SpecError(
                    Problem(
                        f"the answer uses a YAML tag (line {token.start_mark.line + 1}): refused",
                        WHERE,
                        "write plain YAML values, without !tags",
                    )
                )
    except yaml.YAMLError:
        return  # the strict reader below reports the syntax error with its line


def documents(answer: str, max_bytes: int) -> list[Any]:
    """The documents of the spec in `answer` as plain data (SpecError with located problems)."""
    text = spec_text(answer, max_bytes)
    _no_aliases(text)
    return parse_texts(text, WHERE)
