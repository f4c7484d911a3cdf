"""Spec loading (YAML, JSON, multi-document), located errors, refs, version ranges, JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mlops_nocode.catalogue import builtin_path, load_folder
from mlops_nocode.spec import Ref, RefError, SpecError, VersionRange, load_text
from mlops_nocode.spec.schema import json_schema

PB = """apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: p1, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "m:f"}
"""


def test_multi_document_yaml_and_json() -> None:
    docs = load_text(PB + "---\n" + PB.replace("p1", "p2"))
    assert [d.metadata.name for d in docs] == ["p1", "p2"]
    import yaml

    as_json = json.dumps(yaml.safe_load(PB))
    assert load_text(as_json)[0].metadata.name == "p1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PB.replace("mlops-nocode/v1", "v0"), "apiVersion is 'v0'"),
        (PB.replace("kind: Playbook", "kind: Thing"), "unknown kind 'Thing'"),
        (PB + "  colour: red\n", "spec.colour: unknown field"),
        (PB.replace("version: 1.0.0", "version: one"), "invalid version 'one'"),
        (PB.replace('"m:f"', '"m f"'), "invalid entrypoint"),
        (PB.replace("runtime: python", "runtime: cobol"), "spec.runtime"),
        ("a: [1, 2\n", "not valid YAML/JSON"),
    ],
)
def test_located_errors(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as e:
        load_text(text, "f.yaml")
    assert expected in str(e.value)


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(SpecError) as e:
        load_text("apiVersion: x\nkind: [\n", "f.yaml")
    assert "f.yaml:" in e.value.problems[0].where


@pytest.mark.parametrize(
    ("constraint", "versions", "best"),
    [
        ("1.2.0", ["1.2.0", "1.3.0"], "1.2.0"),
        ("^1.2", ["1.1.0", "1.2.5", "1.9.0", "2.0.0"], "1.9.0"),
        ("~1.2", ["1.2.0", "1.2.9", "1.3.0"], "1.2.9"),
        ("^0.2", ["0.2.1", "0.3.0"], "0.2.1"),
        ("1", ["1.0.0", "1.5.0", "2.0.0"], "1.5.0"),
        ("1.2.x", ["1.2.3", "1.3.0"], "1.2.3"),
        (">=1.0.0,<2.0.0", ["0.9.0", "1.4.0", "2.1.0"], "1.4.0"),
        ("*", ["1.0.0", "3.0.0", "3.1.0-rc.1"], "3.0.0"),
        ("^3", ["2.0.0"], None),
    ],
)
def test_version_ranges(constraint: str, versions: list[str], best: str | None) -> None:
    assert VersionRange.parse(constraint).best(versions) == best


def test_refs() -> None:
    assert Ref.parse("metapipeline/ml-portfolio@^1.2") == Ref("metapipeline", "ml-portfolio", "^1.2")
    assert str(Ref.parse("pipeline/x")) == "pipeline/x"
    for bad in ("x", "job/x", "pipeline/X", "pipeline/x@latest!", "pipeline/../x"):
        with pytest.raises(RefError):
            Ref.parse(bad)


def test_json_schema_accepts_every_builtin_spec_and_rejects_bad_ones() -> None:
    import yaml

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = sorted(builtin_path().rglob("*.yaml"))
    assert len(files) >= 10
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            errors = list(validator.iter_errors(doc))
            assert not errors, (f, errors[0].message)
    assert list(validator.iter_errors(yaml.safe_load(PB + "  colour: red\n")))
    assert load_folder([builtin_path()])
