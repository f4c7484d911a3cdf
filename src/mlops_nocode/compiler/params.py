"""Parameters: `${{ params.X }}` / `${{ secrets.X }}` expressions, defaults, and JSON Schema validation."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from jsonschema.exceptions import SchemaError

from mlops_nocode.compiler.schemas import SafeValidator, refused
from mlops_nocode.spec import Problem
from mlops_nocode.spec.expressions import EXPR_RE, Expr, scan

SECRET_PLACEHOLDER = "${{{{ secrets.{} }}}}"
_BIND_NAMESPACES = ("params", "secrets")


class Unknown(str):
    """A parameter value that only a launch (or a parent's `with:`) can give: what a definition is checked
    with. Schema complaints about an Unknown are not problems of the definition."""


def _lookup(e: Expr, params: dict[str, Any], where: str, problems: list[Problem]) -> Any:
    """The value of `${{ params.X }}` (a problem and an Unknown when X is not a parameter)."""
    if e.name not in params:
        known = ", ".join(sorted(params)) or "none"
        problems.append(
            Problem(
                f"unknown parameter {e.name!r} in '{e.text}'",
                where,
                f"declare it in the pipeline's parameters (known: {known})",
            )
        )
        return Unknown(e.text)
    return params[e.name]


def _bind_text(
    value: str, params: dict[str, Any], where: str, secrets: set[str], problems: list[Problem]
) -> Any:
    exprs, bad = scan(value, _BIND_NAMESPACES, ())
    for b in bad:
        problems.append(Problem(b.what, where, b.fix))
    if bad:
        return Unknown(value)
    if len(exprs) == 1 and exprs[0].text == value.strip():
        e = exprs[0]
        if e.namespace == "params":
            return _lookup(e, params, where, problems)
        secrets.add(e.name)
        return SECRET_PLACEHOLDER.format(e.name)
    unknown = False

    def sub(m: re.Match[str]) -> str:
        nonlocal unknown
        if m[1] == "secrets":
            secrets.add(m[2])
            return SECRET_PLACEHOLDER.format(m[2])
        v = _lookup(Expr(m[0], m[1], m[2], None), params, where, problems)
        unknown = unknown or isinstance(v, Unknown)
        return v if isinstance(v, str) else json.dumps(v)

    out = EXPR_RE.sub(sub, value)
    return Unknown(out) if unknown else out


def bind(value: Any, params: dict[str, Any], where: str, secrets: set[str], problems: list[Problem]) -> Any:
    """Substitute expressions in `value`; a string that is one `${{ params.X }}` keeps X's type.

    Secrets are left as placeholders (resolved by the runner) and their names collected in `secrets`.
    Every bad expression adds a located problem to `problems` (its value becomes an Unknown).
    """
    if isinstance(value, str):
        return _bind_text(value, params, where, secrets, problems) if "${{" in value else value
    if isinstance(value, dict):
        return {k: bind(v, params, f"{where}.{k}", secrets, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [bind(v, params, f"{where}[{i}]", secrets, problems) for i, v in enumerate(value)]
    return value


@functools.lru_cache(maxsize=256)
def _checked(text: str) -> tuple[tuple[str, str, str] | None, Any]:
    """(what is wrong, or None; a validator) for a schema given as canonical JSON (checked once)."""
    schema = json.loads(text)
    try:
        SafeValidator.check_schema(schema)
        bad = refused(schema)
    except SchemaError as e:
        bad = (f"invalid parameter schema: {_short(e.message)}", "", "make it a JSON Schema of an object")
    except RecursionError:  # pragma: no cover - documents are limited to MAX_SPEC_DEPTH levels
        bad = ("parameter schema nested too deeply", "", "flatten it")
    return bad, SafeValidator(schema)


class ParamSchema:
    """A compiled parameter schema: fills top-level defaults and validates, with located errors."""

    def __init__(self, schema: dict[str, Any], where: str, owner: str = "") -> None:
        self.schema = schema
        self.where = where
        self.owner = owner or where
        self.problem: Problem | None = None
        bad, self.validator = _checked(json.dumps(schema, sort_keys=True))
        if bad is not None:
            self.problem = Problem(bad[0], f"{where}.parameters{bad[1]}", bad[2])
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        self.properties: dict[str, Any] = props if isinstance(props, dict) else {}
        self.defaults = {
            k: p["default"] for k, p in self.properties.items() if isinstance(p, dict) and "default" in p
        }
        required = schema.get("required", []) if isinstance(schema, dict) else []
        self.required = [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        # Unknown parameters are errors unless the schema explicitly allows additional properties.
        self.closed = not schema.get("additionalProperties", False) if isinstance(schema, dict) else False
        self._memo: dict[str, list[Problem]] = {}

    def unknowns(self, values: dict[str, Any]) -> dict[str, Unknown]:
        """An Unknown for each required parameter that neither `values` nor a default gives."""
        return {
            r: Unknown(f"${{{{ params.{r} }}}}")
            for r in self.required
            if r not in values and r not in self.defaults
        }

    def missing(self, name: str, where: str, fix: str = "") -> Problem:
        """The problem of a required parameter that no value gives."""
        return Problem(
            f"parameter {_short(repr(name), 60)} of {self.owner} is required",
            f"{where}.{name}",
            fix.replace("NAME", name) if fix else f"give it in with: {{{name}: VALUE}}",
        )

    def apply(
        self, values: dict[str, Any], where: str, missing_fix: str = ""
    ) -> tuple[dict[str, Any], list[Problem]]:
        """Defaults merged with `values`, and every problem found (unknown keys, schema violations).

        A required parameter that is missing is named, with `missing_fix` (or a hint to give it in
        `with:`) as the fix. Complaints about Unknown values are left out."""
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
                                f"unknown parameter {_short(repr(k), 60)}",
                                f"{where}.{k}",
                                f"use one of: {known}" if known else "this declares no parameters: remove it",
                            )
                        )
            problems.extend(self._errors(merged, where, missing_fix))
            self._memo[key] = problems
        return merged, problems

    def _errors(self, merged: dict[str, Any], where: str, missing_fix: str) -> list[Problem]:
        problems = []
        try:
            errors = sorted(self.validator.iter_errors(merged), key=lambda e: [str(p) for p in e.path])
        except RecursionError:  # pragma: no cover - values are limited to MAX_SPEC_DEPTH levels
            return [Problem("parameters nested too deeply", where, "flatten them")]
        for err in errors:
            if isinstance(err.instance, Unknown) or (err.validator == "additionalProperties" and self.closed):
                continue
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path)
            if err.validator == "required" and not err.path:
                name = next((r for r in self.required if f"{r!r} is a required property" == err.message), "")
                if name:
                    problems.append(self.missing(name, where, missing_fix))
                    continue
            prop = self.properties.get(str(err.path[0])) if err.path else None
            if err.validator != "required" and len(err.path) > 1 and isinstance(err.schema, dict):
                prop = err.schema  # the schema of the nested value itself (an item, an object's field)
            hint = _hint(prop) if isinstance(prop, dict) else "check the value against the parameter schema"
            problems.append(Problem(_short(err.message), f"{where}{path}", hint))
        return problems


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    for key, sign in (("exclusiveMinimum", ">"), ("exclusiveMaximum", "<")):
        if isinstance(prop.get(key), int | float) and not isinstance(prop.get(key), bool):
            parts.append(f"{sign} {prop[key]}")
    for key, words in (("minLength", "of at least {} characters"), ("maxLength", "of at most {} characters")):
        if isinstance(prop.get(key), int) and not isinstance(prop.get(key), bool):
            parts.append(words.format(prop[key]))
    if isinstance(prop.get("pattern"), str):
        parts.append(f"matching the pattern {_short(prop['pattern'], 80)}")
    fix = "give " + " ".join(parts) if parts else "check the value against the parameter schema"
    about = prop.get("description")
    if isinstance(about, str) and about.strip():
        fix += f" ({_short(' '.join(about.split()), 160)})"  # what the parameter is for says most
    return fix


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
            into.update(m[2] for m in EXPR_RE.finditer(value) if m[1] == "secrets")
    elif isinstance(value, dict):
        for v in value.values():
            find_secrets(v, into)
    elif isinstance(value, list):
        for v in value:
            find_secrets(v, into)


def is_secret(prop: Any) -> bool:
    """A parameter that holds a secret: `writeOnly: true` (pydantic's SecretStr) or `format` "secret" or
    "password". A step gives it as `${{ secrets.NAME }}` (or binds it to a parameter), never as a value."""
    return isinstance(prop, dict) and (
        prop.get("writeOnly") is True or prop.get("format") in ("secret", "password")
    )


def literal_secrets(properties: dict[str, Any], values: Any, where: str) -> list[Problem]:
    """A problem for each secret parameter (at any depth of nested objects) that a spec's `with:` gives
    as a literal value: the value would be committed with the spec and shown in its plans. The value
    itself is never repeated in the problem."""
    if not isinstance(values, dict):
        return []
    problems = []
    for k, prop in properties.items():
        v = values.get(k)
        if v is None or not isinstance(prop, dict):
            continue
        if is_secret(prop) and not (isinstance(v, str) and ("${{" in v or v == "")):
            problems.append(
                Problem(
                    f"secret parameter {_short(repr(k), 60)} is given as a literal value",
                    f"{where}.{k}",
                    "set the value as a secret (`mlops secrets set NAME`, or the UI's Secrets page) and give "
                    "${{ secrets.NAME }}",
                )
            )
        elif isinstance(prop.get("properties"), dict):
            problems.extend(literal_secrets(prop["properties"], v, f"{where}.{k}"))
    return problems
