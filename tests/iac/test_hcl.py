"""Hostile strings written with iac/hcl.py come out of a real `terraform apply` exactly as they went in."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.iac.hcl import HclError, dumps, literal, ref, value, write_root_module
from mlops_nocode.iac.terraform import TerraformRunner
from tests.iac.support import needs_terraform

pytestmark = needs_terraform

HOSTILE = [
    '${file("/etc/passwd")}',
    "%{ if true }x%{ endif }",
    "$${already-escaped}",
    "$$${x}",
    "%%{x}",
    "${",
    "%{",
    'quote " backslash \\ newline \n tab \t cr \r',
    "'; rm -rf / #",
    "$(id) `id` && echo pwned",
    "é ✓ \u2028 \U0001f600",
    "$",
    "%",
    "$$",
    "end$",
    "end%",
    "${var.secret}",
    "\x00nul",
    "}{$%${%{",
    "\\${x}",
    "%}${}",
]


def _random_hostile(n: int) -> list[str]:
    rng = random.Random(9)  # reproducible
    alphabet = ["$", "%", "{", "}", "$$", "${", "%{", '"', "\\", "\n", "a", " ", "~", "*"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def _apply(tmp_path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    write_root_module(tmp_path / "d", doc)
    tf = TerraformRunner(tmp_path / "d")
    try:
        return tf.apply()
    finally:
        tf.destroy()


def test_hostile_strings_and_keys_come_out_literally(tmp_path: Path) -> None:
    strings = HOSTILE + _random_hostile(200)
    as_map = {s: s for s in strings}
    doc = {
        "variable": {"secret": {"type": "string", "default": "should-never-be-read"}},
        "resource": {
            "terraform_data": {
                "strings": {"input": value(strings)},
                "keys": {"input": value(as_map)},
                "nested": {"input": value({"env": [{"name": s, "value": s} for s in HOSTILE]})},
            }
        },
        "output": {
            "strings": {"value": ref("terraform_data.strings.output")},
            "keys": {"value": ref("terraform_data.keys.output")},
            "nested": {"value": ref("terraform_data.nested.output")},
        },
    }
    out = _apply(tmp_path, doc)
    assert out["strings"] == strings
    assert out["keys"] == as_map
    assert out["nested"] == {"env": [{"name": s, "value": s} for s in HOSTILE]}


def test_without_escaping_terraform_would_interpret_them(tmp_path: Path) -> None:
    """The control: the same strings written raw are evaluated (this is what `literal` prevents)."""
    raw = ['${upper("x")}', "${var.secret}", "%{if true}y%{endif}"]
    doc = {
        "variable": {"secret": {"type": "string", "default": "read-by-the-template"}},
        "resource": {"terraform_data": {"raw": {"input": raw}}},
        "output": {"raw": {"value": ref("terraform_data.raw.output")}},
    }
    assert _apply(tmp_path, doc)["raw"] == ["X", "read-by-the-template", "y"]


def test_literal_and_value_unit() -> None:
    assert literal("${a} %{b} $x %y") == "$${a} %%{b} $x %y"
    assert value({"k${": [1, 2.5, True, None, "%{"]}) == {"k$${": [1, 2.5, True, None, "%%{"]}
    for bad in ({1, 2}, b"bytes", object(), {1: "x"}):
        with pytest.raises(HclError):
            value(bad)


@pytest.mark.parametrize(
    "expression",
    ['file("/etc/passwd")', "var.x}${file(1)", "var.x + 1", "", "var", "var.x[0] ", "module.m.${x}"],
)
def test_ref_refuses_anything_but_a_plain_reference(expression: str) -> None:
    with pytest.raises(HclError):
        ref(expression)


def test_ref_accepts_plain_references() -> None:
    for expression in ("var.x", "module.k3s.namespace", 'kubernetes_job.run["a.b"].id', "local.x[0].y"):
        assert ref(expression) == "${" + expression + "}"


def test_dumps_is_ascii_and_stable(tmp_path: Path) -> None:
    text = dumps({"b": value("é\u2028"), "a": 1})
    assert text.isascii() and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": 1, "b": "é\u2028"}
    path = write_root_module(tmp_path / "new", {"a": 1})
    assert path.parent.stat().st_mode & 0o777 == 0o700
