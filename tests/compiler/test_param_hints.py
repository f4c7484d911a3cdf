"""The fix a refused parameter value gets names the expected type with the right article."""

from __future__ import annotations

import pytest

from mlops_nocode.compiler.params import ParamSchema


@pytest.mark.parametrize(
    ("prop", "value", "fix"),
    [
        ({"type": "integer", "minimum": 1}, "three", "give an integer >= 1"),
        ({"type": "number"}, "x", "give a number"),
        ({"type": "object"}, 1, "give an object"),
        ({"type": ["integer", "null"]}, "x", "give an integer or null"),
        ({"type": "string", "enum": ["a", "b"]}, "c", 'give one of "a", "b"'),
    ],
)
def test_the_fix_names_the_type_grammatically(prop: dict[str, object], value: object, fix: str) -> None:
    schema = ParamSchema({"type": "object", "properties": {"n": prop}}, "pipeline/p")
    _, problems = schema.apply({"n": value}, "parameters")
    assert [(p.where, p.fix) for p in problems] == [("parameters.n", fix)]
