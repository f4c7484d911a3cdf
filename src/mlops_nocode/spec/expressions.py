"""The expression grammar of specs: `${{ NAMESPACE.NAME }}`, optionally `${{ NAMESPACE.NAME | FILTER }}`.

Namespaces: `params`, `secrets` (in `with:` values and in a command playbook's argv/env), `inputs`,
`outputs` and `spec` (`${{ spec.dir }}`, the folder of the playbook's spec file; argv/env only). The one
filter, `shell_quote`, quotes the value for a POSIX shell; it is applied where the value is substituted
into a command's argv or env. Every `${{` must open a valid expression: there is no way to write a
literal `${{`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

NAMESPACES = ("params", "secrets", "inputs", "outputs", "spec")
"""In a command's argv and env; `spec` has one name, `dir` (the folder of the playbook's spec file)."""
FILTERS = ("shell_quote",)
NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
EXPR_RE = re.compile(
    r"\$\{\{\s*(params|secrets|inputs|outputs|spec)\.(" + NAME + r")\s*(?:\|\s*([A-Za-z_]\w*)\s*)?\}\}"
)
"""One valid expression: groups (namespace, name, filter or None)."""
_CLOSED_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Expr:
    """One expression found in a text."""

    text: str
    namespace: str
    name: str
    filter: str | None


@dataclass(frozen=True, slots=True)
class ExprProblem:
    """Why a `${{ ... }}` in a text is not a usable expression, and how to fix it."""

    what: str
    fix: str


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def scan(
    text: str, allowed: tuple[str, ...] = NAMESPACES, filters: tuple[str, ...] = FILTERS
) -> tuple[list[Expr], list[ExprProblem]]:
    """The expressions of `text`, and a problem for every `${{` that does not open a valid one."""
    exprs: list[Expr] = []
    problems: list[ExprProblem] = []
    only = " and ".join(f"${{{{ {ns}.NAME }}}}" for ns in allowed)
    pos = 0
    while (start := text.find("${{", pos)) >= 0:
        closed = _CLOSED_RE.match(text, start)
        if closed is None:
            problems.append(
                ExprProblem(
                    f"unterminated expression {_shown(text[start:])!r}: '${{{{' has no closing '}}}}'",
                    "close it: ${{ params.NAME }} (a literal '${{' cannot be written)",
                )
            )
            break
        pos = closed.end()
        m = EXPR_RE.fullmatch(closed[0])
        if m is None or m[1] not in allowed:
            problems.append(
                ExprProblem(
                    f"unsupported expression '${{{{ {_shown(closed[1].strip())} }}}}'",
                    f"the only expressions here are {only}",
                )
            )
            continue
        if m[1] == "spec" and m[2] != "dir":
            problems.append(
                ExprProblem(
                    f"unknown expression '{_shown(closed[0])}'", "the spec namespace has one name: spec.dir"
                )
            )
            continue
        if m[3] is not None and m[3] not in filters:
            problems.append(
                ExprProblem(
                    f"unknown filter {m[3]!r} in '{_shown(closed[0])}'",
                    f"use one of: {', '.join(filters)}"
                    if filters
                    else "filters apply only in a command playbook's argv and env",
                )
            )
            continue
        exprs.append(Expr(closed[0], m[1], m[2], m[3]))
    return exprs, problems


def apply_filter(value: str, name: str | None) -> str:
    """`value` through the filter `name` (None: unchanged)."""
    if name == "shell_quote":
        return shlex.quote(value)
    return value
