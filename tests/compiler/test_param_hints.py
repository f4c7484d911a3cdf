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
        (
            {
                "type": "string",
                "pattern": "^$|^/",
                "description": "An absolute folder.\n Empty: the shipped one.",
            },
            "rel/x",
            "give a string matching the pattern ^$|^/ (An absolute folder. Empty: the shipped one.)",
        ),
        ({"type": "string", "maxLength": 3}, "long", "give a string of at most 3 characters"),
    ],
)
def test_the_fix_names_the_type_grammatically(prop: dict[str, object], value: object, fix: str) -> None:
    schema = ParamSchema({"type": "object", "properties": {"n": prop}}, "pipeline/p")
    _, problems = schema.apply({"n": value}, "parameters")
    assert [(p.where, p.fix) for p in problems] == [("parameters.n", fix)]


@pytest.mark.parametrize(
    ("value", "where", "fix"),
    [
        ({"grid": {"C": -1}}, "parameters.grid.C", "give a number > 0"),
        ({"grid": {"depth": 99}}, "parameters.grid.depth", "give an integer <= 10"),
        ({"tags": ["ok", "x"]}, "parameters.tags[1]", "give a string of at least 2 characters"),
    ],
)
def test_the_fix_of_a_nested_value_names_its_own_schema(
    value: dict[str, object], where: str, fix: str
) -> None:
    """A nested field or an array item gets the hint of its own schema, not of the top-level parameter
    (a form shows the fix on the field it concerns)."""
    schema = ParamSchema(
        {
            "type": "object",
            "properties": {
                "grid": {
                    "type": "object",
                    "properties": {
                        "C": {"type": "number", "exclusiveMinimum": 0},
                        "depth": {"type": "integer", "maximum": 10},
                    },
                },
                "tags": {"type": "array", "items": {"type": "string", "minLength": 2}},
            },
        },
        "pipeline/p",
    )
    _, problems = schema.apply(value, "parameters")
    assert [(p.where, p.fix) for p in problems] == [(where, fix)]
