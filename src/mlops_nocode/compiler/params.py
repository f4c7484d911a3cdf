"""Parameters: `${{ params.X }}` / `${{ secrets.X }}` expressions, defaults, and JSON Schema validation."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from mlops_nocode.spec import Problem

EXPR_RE = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_NAME_RE = re.compile(r"^(params|secrets|inputs|outputs)\.([A-Za-z_][A-Za-z0-9_-]*)$")
SECRET_PLACEHOLDER = "${{{{ secrets.{} }}}}"


class _Unbound(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _lookup(expr: str, params: dict[str, Any], where: str, allowed: frozenset[str]) -> tuple[str, str]:
    m = _NAME_RE.match(expr)
    if not m or m[1] not in allowed:
        raise _Unbound(
            Problem(
                f"unsupported expression '${{{{ {expr} }}}}'",
                where,
                "the only expressions are ${{ params.NAME }} and ${{ secrets.NAME }}",
            )
        )
    if m[1] == "params" and m[2] not in params:
        known = ", ".join(sorted(params)) or "none"
        raise _Unbound(
            Problem(
                f"unknown parameter {m[2]!r} in '${{{{ {expr} }}}}'",
                where,
                f"declare it in the pipeline's parameters (known: {known})",
            )
        )
    return m[1], m[2]


def bind(
    value: Any,
    params: dict[str, Any],
    where: str,
    secrets: set[str],
    allowed: frozenset[str] = frozenset({"params", "secrets"}),
) -> Any:
    """Substitute expressions in `value`; a string that is one `${{ params.X }}` keeps X's type.

    Secrets are left as placeholders (resolved by the runner) and their names collected in `secrets`.
    Raises _Unbound (caught by the compiler) with a located problem.
    """
    if isinstance(value, str):
        if "${{" not in value:
            return value
        whole = EXPR_RE.fullmatch(value.strip())
        if whole:
            ns, name = _lookup(whole[1], params, where, allowed)
            if ns == "params":
                return params[name]
            if ns == "secrets":
                secrets.add(name)
            return SECRET_PLACEHOLDER.format(name) if ns == "secrets" else value

        def sub(m: re.Match[str]) -> str:
            ns, name = _lookup(m[1], params, where, allowed)
            if ns == "params":
                v = params[name]
                return v if isinstance(v, str) else json.dumps(v)
            if ns == "secrets":
                secrets.add(name)
                return SECRET_PLACEHOLDER.format(name)
            return m[0]

        return EXPR_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: bind(v, params, f"{where}.{k}", secrets, allowed) for k, v in value.items()}
    if isinstance(value, list):
        return [bind(v, params, f"{where}[{i}]", secrets, allowed) for i, v in enumerate(value)]
    return value


class ParamSchema:
    """A compiled parameter schema: fills top-level defaults and validates, with located errors."""

    def __init__(self, schema: dict[str, Any], where: str) -> None:
        self.schema = schema
        self.where = where
        self.problem: Problem | None = None
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as e:
            self.problem = Problem(
                f"invalid parameter schema: {e.message}",
                f"{where}.parameters",
                "fix it to be a JSON Schema of an object",
            )
        self.validator = Draft202012Validator(schema)
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        self.properties: dict[str, Any] = props if isinstance(props, dict) else {}
        self.defaults = {
            k: p["default"] for k, p in self.properties.items() if isinstance(p, dict) and "default" in p
        }
        # Unknown parameters are errors unless the schema explicitly allows additional properties.
        self.closed = not schema.get("additionalProperties", False) if isinstance(schema, dict) else False
        self._memo: dict[str, list[Problem]] = {}

    def apply(self, values: dict[str, Any], where: str) -> tuple[dict[str, Any], list[Problem]]:
        """Defaults merged with `values`, and every problem found (unknown keys, schema violations)."""
        if self.problem is not None:
            return values, [self.problem]
        merged = _merge(self.defaults, values)
        key = json.dumps(merged, sort_keys=True, default=str)
        problems = self._memo.get(key)
        if problems is None:
            problems = []
            if self.closed:
                for k in values:
                    if k not in self.properties:
                        known = ", ".join(sorted(self.properties))
                        problems.append(
                            Problem(
                                f"unknown parameter {k!r}",
                                f"{where}.{k}",
                                f"use one of: {known}" if known else "this declares no parameters: remove it",
                            )
                        )
            for err in sorted(self.validator.iter_errors(merged), key=lambda e: list(e.path)):
                if err.validator == "additionalProperties" and self.closed:
                    continue
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path)
                prop = self.properties.get(str(err.path[0])) if err.path else None
                hint = (
                    _hint(prop) if isinstance(prop, dict) else "check the value against the parameter schema"
                )
                problems.append(Problem(err.message, f"{where}{path}", hint))
            self._memo[key] = problems
        return merged, problems


def _hint(prop: dict[str, Any]) -> str:
    parts = []
    if "enum" in prop:
        parts.append("one of " + ", ".join(json.dumps(v) for v in prop["enum"]))
    elif "type" in prop:
        kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        named = " or ".join(str(k) for k in kinds)
        parts.append(f"{'an' if named[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {named}")
    if "minimum" in prop:
        parts.append(f">= {prop['minimum']}")
    if "maximum" in prop:
        parts.append(f"<= {prop['maximum']}")
    return "give " + " ".join(parts) if parts else "check the value against the parameter schema"


def _merge(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`values` over `defaults`; where both hold an object, merge them key by key (deeply)."""
    out = dict(defaults)
    for k, v in values.items():
        d = out.get(k)
        out[k] = _merge(d, v) if isinstance(d, dict) and isinstance(v, dict) else v
    return out


def find_secrets(value: Any, into: set[str]) -> None:
    """Add the name of every `${{ secrets.X }}` placeholder found in `value` (at any depth)."""
    if isinstance(value, str):
        if "${{" in value:
            for m in EXPR_RE.finditer(value):
                mm = _NAME_RE.match(m[1])
                if mm and mm[1] == "secrets":
                    into.add(mm[2])
    elif isinstance(value, dict):
        for v in value.values():
            find_secrets(v, into)
    elif isinstance(value, list):
        for v in value:
            find_secrets(v, into)
