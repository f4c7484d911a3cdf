"""Limits on what specs, launch values and parameter schemas may hold: located problems, never a crash
or a hang; pre-release ranges; catalogue saves after a pre-release."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import semver

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.compiler.params import ParamSchema
from mlops_nocode.spec import SpecError, VersionRange, load_text, parse_document
from mlops_nocode.spec.limits import limits
from tests.catalogue.gitcat_support import catalogues, doc, new_repo, playbook_text
from tests.compiler.test_compile import catalogue, pipeline


def deep(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def pipeline_data(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "version": "1.0.0"},
        "spec": {"steps": [{"id": "a", "uses": "playbook/add"}], **spec},
    }


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_document(data)
    return [f"{p.where}: {p.what}" for p in e.value.problems]


@pytest.fixture
def nesting_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAX_NESTING_DEPTH", "1000")
    limits.cache_clear()
    yield
    monkeypatch.delenv("MAX_NESTING_DEPTH")
    limits.cache_clear()


def chain(levels: int) -> Index:
    texts = [pipeline("p0", "- {id: s, uses: playbook/add}", "outputs: {y: s.y}")]
    texts += [
        pipeline(f"p{i}", f"- {{id: s, uses: pipeline/p{i - 1}}}", "outputs: {y: s.y}")
        for i in range(1, levels)
    ]
    return catalogue(*texts)


def test_nesting_is_not_limited_by_the_python_stack(nesting_limit: None) -> None:
    plan = compile_plan("pipeline/p899", chain(900))
    assert plan.steps[0].id == "s/" * 899 + "s" and plan.outputs["y"].step == plan.steps[0].id


def test_nesting_past_the_limit_is_one_clear_problem() -> None:
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/p119", chain(120))
    [p] = e.value.problems
    assert p.what == "pipelines nested more than 100 levels deep" and "MAX_NESTING_DEPTH" in p.fix
    assert p.where.count("> steps[0] (s) >") == 100
    assert len(compile_plan("pipeline/p59", chain(60)).steps) == 1


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"target": {"provider": "local", "options": deep(40)}}, "p > spec.target.options.a.a"),
        ({"parameters": {"type": "object", "properties": deep(40)}}, "spec.parameters.properties.a"),
        ({"steps": [{"id": "a", "uses": "playbook/add", "with": deep(40)}]}, "spec.steps[0].with.a"),
    ],
)
def test_every_free_form_mapping_obeys_the_depth_limit(spec: dict[str, Any], where: str) -> None:
    [problem] = problems_of(pipeline_data(**spec))
    assert where in problem and "nested more than 32 levels deep" in problem


def test_deep_labels_and_launch_values_are_refused() -> None:
    data = pipeline_data()
    data["metadata"]["labels"] = deep(40)
    assert "nested more than 32 levels deep" in problems_of(data)[0]
    index = catalogue(pipeline("p", "- {id: a, uses: playbook/add}"))
    for params, target in [(deep(40), None), ({}, {"provider": "local", "options": deep(40)})]:
        with pytest.raises(SpecError) as e:
            compile_plan("pipeline/p", index, params, target)
        assert "nested more than 32 levels deep" in e.value.problems[0].what


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (math.nan, "nan is not a finite number"),
        (math.inf, "inf is not a finite number"),
        (10**40, "integer out of range"),
        ({1: "x"}, "key 1 is a int, not a string"),
        ("a\x00b", "NUL character"),
        ("\ud800", "unpaired surrogate"),
    ],
)
def test_values_that_are_not_plain_json_are_refused(value: Any, what: str) -> None:
    data = pipeline_data(steps=[{"id": "a", "uses": "playbook/add", "with": {"n": value}}])
    [problem] = problems_of(data)
    assert what in problem and "spec.steps[0].with.n" in problem
    index = catalogue(pipeline("p", "- {id: a, uses: playbook/add}"))
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/p", index, {"n": value})
    assert what in e.value.problems[0].what


def test_launch_values_are_data_not_expressions() -> None:
    p = pipeline(
        "p",
        '- {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}}',
        "parameters: {type: object, properties: {n: {}}}",
    )
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/p", catalogue(p), {"n": "${{ secrets.ADMIN_KEY }}"})
    assert "launch values are data, not expressions" in e.value.problems[0].what


@pytest.mark.parametrize(
    ("prop", "what"),
    [
        ({"$ref": "#/$defs/x"}, "$ref is not supported"),
        ({"$ref": "https://example.invalid/schema.json"}, "$ref is not supported"),
        ({"type": "string", "pattern": "(?=a)a"}, "is not supported"),
        ({"unevaluatedProperties": False}, "unevaluatedProperties is not supported"),
    ],
)
def test_parameter_schemas_that_could_loop_or_backtrack_are_refused(prop: dict[str, Any], what: str) -> None:
    schema = ParamSchema({"type": "object", "properties": {"x": prop}}, "playbook/p")
    _, problems = schema.apply({"x": "a"}, "with")
    assert [p.where for p in problems] == ["playbook/p.parameters.properties.x" + _key(prop)]
    assert what in problems[0].what


def _key(prop: dict[str, Any]) -> str:
    return "." + next(iter(prop)) if "$ref" in prop or "unevaluatedProperties" in prop else ".pattern"


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    schema = ParamSchema(
        {
            "type": "object",
            "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}, "l": {"uniqueItems": True}},
            "patternProperties": {"^(b+)+$": {"type": "integer"}},
            "additionalProperties": {"type": "integer"},
        },
        "p",
    )
    hostile = "a" * 100_000 + "!"  # Python's re would backtrack for longer than the universe has existed
    _, problems = schema.apply(
        {"x": hostile, "b" * 50_000 + "!": 1, "l": [{"k": i} for i in range(50_000)]}, "w"
    )
    assert [p.where for p in problems] == ["w.x"] and "does not match" in problems[0].what
    assert len(problems[0].what) <= 200  # the value is not echoed whole


def test_pre_releases_never_hide_a_later_release() -> None:
    versions = ["1.2.0", "1.2.1-rc.1", "1.2.1", "1.3.0-beta.1", "1.2.2-rc.1"]
    best = {r: VersionRange.parse(r).best(versions) for r in ["^1.2", "~1.2", "1.2", "*", "^1.2.1-rc.1"]}
    assert best == {"^1.2": "1.2.1", "~1.2": "1.2.1", "1.2": "1.2.1", "*": "1.2.1", "^1.2.1-rc.1": "1.2.1"}
    assert VersionRange.parse(">=1.2.1-rc.1,<2.0.0").best(versions) == "1.2.1"  # not 1.3.0-beta.1
    assert VersionRange.parse("^1.2.2-rc.1").best(versions) == "1.2.2-rc.1"
    assert VersionRange.parse("^1.2.1-rc.1").best(["1.2.1-rc.1", "1.2.1-rc.2"]) == "1.2.1-rc.2"
    assert VersionRange.parse("1.2.1-rc.1").best(versions) == "1.2.1-rc.1"


def test_a_release_can_follow_a_later_pre_release_in_a_catalogue(tmp_path: Path) -> None:
    cat = catalogues(new_repo(tmp_path / "repo"))
    for version in ("1.2.0", "1.3.0-rc.1", "1.2.1"):
        cat.save([doc(playbook_text("x", version, f"m:v{version.replace('.', '_').replace('-', '_')}"))])
    assert cat.repos[0].versions("playbook", "x") == ["1.2.0", "1.2.1", "1.3.0-rc.1"]
    assert semver.Version.parse("1.2.1") < semver.Version.parse("1.3.0-rc.1")


def test_command_expressions_are_checked_where_they_are_written() -> None:
    from mlops_nocode.compiler.lint import check_playbook

    [pb] = load_text(
        """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: c, version: 1.0.0}
spec:
  runtime: command
  inputs: {data: {type: file}}
  command:
    argv: ["${{ spec.dir }}/run.sh", "${{ inputs.data | shell_quote }}", "${{ inputs.nope }}",
           "${{ spec.home }}", "${{ params.x | upper }}", "${{ params.x", bash, -euo, pipefail, -c,
           "cat ${{ inputs.data }}"]
"""
    )
    errors, warnings = check_playbook(pb)  # type: ignore[arg-type]
    assert [(e.where.rsplit(" > ", 1)[1], e.what.split(" ")[0]) for e in errors] == [
        ("spec.command.argv[2]", "'${{"),
        ("spec.command.argv[3]", "unknown"),
        ("spec.command.argv[4]", "unknown"),
        ("spec.command.argv[5]", "unterminated"),
    ]
    [w] = warnings
    assert w.where.endswith("argv[10]") and w.what.startswith("input path 'data' is substituted")
