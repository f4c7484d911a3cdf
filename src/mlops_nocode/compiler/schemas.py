"""Parameter schemas written by anyone, checked in bounded time.

A parameter schema is JSON Schema (draft 2020-12) with three restrictions that keep validation linear in
the size of the schema and the value, whoever wrote them:
- regular expressions (`pattern`, `patternProperties`) run on RE2 (google-re2: linear time, no
  backtracking), so backreferences and lookaround are refused;
- no references (`$ref`, `$dynamicRef`): a schema refers to nothing, so it cannot loop or fan out;
- `unevaluatedProperties` is refused (it would match names with Python's backtracking engine).
`uniqueItems` is checked in linear time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

_REFUSED = {
    "$ref": "inline the referenced schema",
    "$dynamicRef": "inline the referenced schema",
    "$recursiveRef": "inline the referenced schema",
    "unevaluatedProperties": "use additionalProperties",
}
# Keywords whose value maps names (of properties or definitions) to schemas: their keys are not keywords.
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_DATA = frozenset({"enum", "const", "default", "examples"})
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class PatternError(ValueError):
    """A `pattern` RE2 cannot run."""


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        raise PatternError(
            f"pattern {pattern[:60]!r} is not supported: {e.args[0].decode(errors='replace')}"
        ) from None


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


def _pattern(v: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if v.is_type(instance, "string") and not _search(pattern, instance):
        shown = repr(instance) if len(instance) <= 40 else repr(instance[:37] + "...")
        yield ValidationError(f"{shown} does not match {pattern[:80]!r}")


def _pattern_properties(
    v: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not v.is_type(instance, "object"):
        return
    for pattern, sub in patterns.items():
        for k, value in instance.items():
            if _search(pattern, k):
                yield from v.descend(value, sub, path=k, schema_path=pattern)


def _additional_properties(v: Any, ap: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not v.is_type(instance, "object"):
        return
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [k for k in instance if k not in props and not any(_search(p, k) for p in patterns)]
    if v.is_type(ap, "object"):
        for extra in extras:
            yield from v.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        names = ", ".join(repr(e) for e in sorted(extras)[:10])
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


def _canonical(value: Any) -> str:
    def norm(x: Any) -> Any:
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, dict):
            return {k: norm(i) for k, i in x.items()}
        if isinstance(x, list):
            return [norm(i) for i in x]
        return x

    return json.dumps(norm(value), sort_keys=True)


def _unique_items(v: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if unique and v.is_type(instance, "array"):
        seen: set[str] = set()
        for item in instance:
            key = _canonical(item)
            if key in seen:
                yield ValidationError("array has non-unique elements")
                return
            seen.add(key)


SafeValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "uniqueItems": _unique_items,
    },
)


def refused(schema: Any) -> tuple[str, str, str] | None:
    """(what, JSON path, fix) for the first thing a parameter schema may not use, or None."""
    stack: list[tuple[Any, str, bool]] = [(schema, "", False)]
    while stack:
        node, path, names = stack.pop()
        if isinstance(node, dict):
            for k, value in node.items():
                if not names and k in _REFUSED:
                    return f"{k} is not supported in parameter schemas", f"{path}.{k}", _REFUSED[k]
                if not names and k in ("pattern", "patternProperties"):
                    for p in [value] if k == "pattern" else list(value) if isinstance(value, dict) else []:
                        if isinstance(p, str):
                            try:
                                _compiled(p)
                            except PatternError as e:
                                return str(e), f"{path}.{k}", "write it without backreferences or lookaround"
                if names or k not in _DATA:
                    stack.append((value, f"{path}.{k}", not names and k in _NAME_MAPS))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]", False) for i, item in enumerate(node))
    return None
