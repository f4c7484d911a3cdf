"""Limits on what a spec may hold, and the one check every piece of spec data goes through.

Settings (environment variables, no prefix):
- MAX_SPEC_DEPTH (default 32): how deeply a document, launch parameters or a target's options may nest
  (a mapping or list inside another counts one level; a document's top level is level 1).
- MAX_NESTING_DEPTH (default 100): how many levels of pipelines inside pipelines a compile follows.
- MAX_PLAYBOOK_CODE_BYTES (default 262144, 256 KiB): the largest Python source a playbook may carry in
  `python.code` (UTF-8 bytes).

Checked data must also be plain JSON: string keys, finite numbers, integers within 64 bits, and strings
without NUL characters or unpaired surrogates (none of which survive JSON, a database or an argv).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.spec.errors import Problem, SpecError

MAX_INT = 2**63 - 1
_MAX_PROBLEMS = 20


class SpecLimits(BaseSettings):
    """The spec layer's settings, read from the environment."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    max_spec_depth: int = Field(
        default=32, ge=4, le=200, description="levels of nesting in a document or in launch parameters"
    )
    max_nesting_depth: int = Field(
        default=100, ge=1, le=100_000, description="levels of pipelines used inside pipelines"
    )
    max_playbook_code_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="UTF-8 bytes of a playbook's python.code",
    )


@functools.lru_cache(maxsize=1)
def limits() -> SpecLimits:
    """The limits in force (read once from the environment; `limits.cache_clear()` re-reads it).

    Raises SpecError naming the variable when one holds an invalid value."""
    try:
        return SpecLimits()
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "environment"
        raise SpecError(
            Problem(f"invalid setting {name}: {err['msg']}", "environment", f"fix or unset {name}")
        ) from None


def spec_depth_limit() -> int:
    """MAX_SPEC_DEPTH, or its default when the variable is invalid (compiling reports that)."""
    try:
        return limits().max_spec_depth
    except SpecError:
        return int(SpecLimits.model_fields["max_spec_depth"].default)


def playbook_code_limit() -> int:
    """MAX_PLAYBOOK_CODE_BYTES, or its default when the variable is invalid (compiling reports that)."""
    try:
        return limits().max_playbook_code_bytes
    except SpecError:
        return int(SpecLimits.model_fields["max_playbook_code_bytes"].default)


def _path(where: str, parts: list[str | int]) -> str:
    out = where
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out and not out.endswith("> ") else "") + p
    return out


def data_problems(data: Any, where: str, max_depth: int | None = None) -> list[Problem]:
    """Why `data` (parsed YAML/JSON) cannot be a spec value, each located under `where`; [] when fine.

    Walks without recursion, so any input is safe to check.
    """
    limit = limits().max_spec_depth if max_depth is None else max_depth
    problems: list[Problem] = []
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack and len(problems) < _MAX_PROBLEMS:
        value, path = stack.pop()
        if isinstance(value, dict | list) and len(path) >= limit:
            problems.append(
                Problem(
                    f"nested more than {limit} levels deep",
                    _path(where, path),
                    f"flatten it (the limit is MAX_SPEC_DEPTH={limit})",
                )
            )
            continue
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    problems.append(
                        Problem(
                            f"key {k!r} is a {type(k).__name__}, not a string",
                            _path(where, path),
                            f'quote the key: "{k}"',
                        )
                    )
                    continue
                if _bad_text(k):
                    problems.append(Problem(_bad_text(k), _path(where, path), "remove that character"))
                    continue
                stack.append((v, [*path, k]))
        elif isinstance(value, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(value))
        elif isinstance(value, str):
            why = _bad_text(value)
            if why:
                problems.append(Problem(why, _path(where, path), "remove that character"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(f"{value} is not a finite number", _path(where, path), "give a number"))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            problems.append(
                Problem(
                    "integer out of range (beyond 64 bits)",
                    _path(where, path),
                    f"give a number between {-MAX_INT} and {MAX_INT}, or quote it to pass text",
                )
            )
        elif value is not None and not isinstance(value, str | int | float | bool):
            problems.append(
                Problem(f"a {type(value).__name__} is not a JSON value", _path(where, path), "give JSON data")
            )
    return problems


def _bad_text(text: str) -> str:
    if "\x00" in text:
        return "text holds a NUL character (\\0)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "text holds an unpaired surrogate (not valid Unicode)"
    return ""


def check_data(data: Any, where: str, max_depth: int | None = None) -> None:
    """Raise SpecError with `data_problems` when there are any."""
    problems = data_problems(data, where, max_depth)
    if problems:
        raise SpecError(problems)
