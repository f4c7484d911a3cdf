"""Safe building of Terraform JSON (`main.tf.json`) for the renderers.

In Terraform's JSON syntax every string in an expression position is a string template: `${...}`
interpolates and `%{...}` runs a directive, and an object's keys are templates too. A user string put
there as is could read variables, call functions (`file("/etc/passwd")`) or break the module. `literal`
escapes both marks (`$${`, `%%{`, Terraform's own escapes); `value` does it for every string and key of a
JSON-like value; `ref` is the only way to write an interpolation, and only of a plain reference such as
`var.name` or `module.k3s.namespace`. JSON quoting (quotes, backslashes, newlines, control characters)
is left to `json.dumps` in `dumps`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["HclError", "dumps", "literal", "ref", "value", "write_root_module"]

_REFERENCE = re.compile(
    r"^(var|local|module|data|[a-z][a-z0-9_]*)"
    r"(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\[\"[A-Za-z0-9_.-]+\"\])+$"
)


class HclError(ValueError):
    """A value cannot be written safely into Terraform JSON (the message says which and why)."""


def literal(text: str) -> str:
    """`text` as a Terraform JSON template that evaluates to exactly `text`."""
    return text.replace("${", "$${").replace("%{", "%%{")


def value(obj: Any) -> Any:
    """A copy of JSON-like `obj` with every string and object key made literal (numbers, booleans and
    null as they are). Anything else (sets, bytes, objects) is refused: it has no single JSON form."""
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, str):
        return literal(obj)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise HclError(f"object key {k!r} is not a string")
            out[literal(k)] = value(v)
        return out
    if isinstance(obj, list | tuple):
        return [value(v) for v in obj]
    raise HclError(f"a {type(obj).__name__} has no Terraform JSON form")


def ref(expression: str) -> str:
    """`${expression}` for a plain reference (`var.x`, `module.m.out`, `res_type.name.attr[0]`); anything
    else (function calls, operators, templates) is refused."""
    if not _REFERENCE.match(expression):
        raise HclError(f"{expression!r} is not a plain Terraform reference")
    return "${" + expression + "}"


def dumps(doc: Mapping[str, Any]) -> str:
    """The root module as JSON text (ASCII only, keys in a stable order)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n"


def write_root_module(workdir: Path, doc: Mapping[str, Any]) -> Path:
    """Write `doc` as `workdir/main.tf.json` (the folder is created private) and return its path."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = workdir / "main.tf.json"
    path.write_text(dumps(doc), encoding="utf-8")
    return path
