"""Loader edge cases found by QA: timestamps, duplicate keys, encodings, BOMs, float versions, x- fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_nocode.spec import SpecError, load_file, load_text
from mlops_nocode.spec.loader import iter_spec_files, yaml_load_value

PB = """apiVersion: mlops-nocode/v1
kind: Playbook
metadata:
  name: p1
  version: 1.0.0
  description: a playbook
spec:
  runtime: python
  python: {entrypoint: "m:f"}
  parameters:
    type: object
    properties:
      since: {type: string, default: 2024-01-01}
"""


def problems(text: str, source: str = "f.yaml") -> SpecError:
    with pytest.raises(SpecError) as e:
        load_text(text, source)
    return e.value


def test_yaml_timestamps_stay_strings_and_serialise() -> None:
    doc = load_text(PB.replace("name: p1", "name: 2024-01-01"))[0]
    assert doc.metadata.name == "2024-01-01"
    since = doc.spec.parameters["properties"]["since"]["default"]
    assert since == "2024-01-01"
    json.dumps(doc.model_dump(mode="json", by_alias=True))
    json.dumps(doc.model_dump(by_alias=True))
    explicit = load_text(PB.replace("default: 2024-01-01", "default: !!timestamp 2024-01-01T10:00:00"))[0]
    assert explicit.spec.parameters["properties"]["since"]["default"] == "2024-01-01T10:00:00"


def test_yaml_load_value_keeps_dates_and_reads_scalars() -> None:
    assert yaml_load_value("2024-01-01") == "2024-01-01"
    assert yaml_load_value("50") == 50
    assert yaml_load_value("[a, 1.5, true]") == ["a", 1.5, True]
    assert yaml_load_value("{a: 2024-01-01}") == {"a": "2024-01-01"}
    assert yaml_load_value("") is None
    for bad in ("[1, 2", "{a: 1, a: 2}", "a\n---\nb", "a: b: c"):
        with pytest.raises(SpecError) as e:
            yaml_load_value(bad)
        assert isinstance(e.value, yaml.YAMLError)  # callers falling back on YAMLError keep working


def test_duplicate_keys_are_located() -> None:
    text = PB.replace("  version: 1.0.0\n", "  version: 1.0.0\n  name: p2\n")
    e = problems(text)
    [p] = e.problems
    assert p.what == "duplicate key 'name'"
    assert p.where == "f.yaml:6:3"
    assert p.fix == "remove one of them"
    assert "f.yaml:6:3: duplicate key 'name'" in str(e)


def test_duplicate_keys_in_flow_mapping_and_json() -> None:
    e = problems(PB + "  resources: {cpu: 1, memory: 1Gi, cpu: 2}\n")
    assert e.problems[0].what == "duplicate key 'cpu'" and e.problems[0].where == "f.yaml:14:36"
    e = problems('{"apiVersion": "mlops-nocode/v1", "kind": "Playbook", "kind": "Pipeline"}', "f.json")
    assert e.problems[0].what == "duplicate key 'kind'" and e.problems[0].fix == "remove one of them"


def test_merge_keys_are_not_duplicates() -> None:
    text = """apiVersion: mlops-nocode/v1
kind: Playbook
x-common: &res {cpu: 2, memory: 1Gi}
metadata: {name: p1, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "m:f"}
  resources: {<<: *res, cpu: 4}
"""
    doc = load_text(text)[0]
    assert doc.spec.resources.cpu == 4 and doc.spec.resources.memory == "1Gi"


def test_non_utf8_file_is_a_located_problem(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes(PB.replace("a playbook", "caf\u00e9").encode("latin-1"))
    with pytest.raises(SpecError) as e:
        load_file(f)
    [p] = e.value.problems
    assert "not UTF-8 text" in p.what and p.where == f"{f}:6" and "UTF-8" in p.fix


def test_utf16_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "u16.yaml"
    f.write_bytes(PB.encode("utf-16"))
    with pytest.raises(SpecError) as e:
        load_file(f)
    assert "UTF-16" in e.value.problems[0].what


@pytest.mark.parametrize("as_list", [True, False])
def test_json_with_bom(tmp_path: Path, as_list: bool) -> None:
    data = yaml_load_value(PB)
    f = tmp_path / "spec.json"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps([data, data] if as_list else data).encode())
    docs = load_file(f)
    assert [d.metadata.name for d in docs] == (["p1", "p1"] if as_list else ["p1"])
    assert load_text("\ufeff" + PB)[0].metadata.name == "p1"


@pytest.mark.parametrize("value", ["1.0", "1", "true"])
def test_unquoted_version_gets_a_quoting_hint(value: str) -> None:
    e = problems(PB.replace("version: 1.0.0", f"version: {value}"))
    [p] = e.problems
    assert p.where.endswith("metadata.version")
    assert "quoted semver string" in p.what
    assert p.fix == 'quote it: version: "1.0.0"'


def test_quoted_bad_version_keeps_its_message() -> None:
    e = problems(PB.replace("version: 1.0.0", 'version: "1.0"'))
    assert "invalid version '1.0'" in e.problems[0].what


def test_top_level_extension_fields_are_ignored() -> None:
    text = "x-common: &c {runtime: python, python: {entrypoint: 'm:f'}}\n" + PB.replace(
        'spec:\n  runtime: python\n  python: {entrypoint: "m:f"}\n', "spec:\n  <<: *c\n"
    )
    doc = load_text(text)[0]
    assert doc.spec.runtime == "python" and doc.spec.python is not None


def test_extension_fields_only_at_top_level() -> None:
    e = problems(PB.replace("  runtime: python", "  x-note: hi\n  runtime: python"))
    assert "spec.x-note: unknown field" in str(e)


def test_names_with_trailing_newline_are_rejected() -> None:
    e = problems(PB.replace("name: p1", 'name: "p1\\n"'))
    assert "invalid name" in str(e)


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    text = PB + "  secrets: &s [a, *s]\n"
    assert "refers to itself" in str(problems(text))


def test_alias_bomb_is_rejected() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    text = PB.replace("spec:\n", "spec:\n  parameters_bomb:\n    " + "\n    ".join(lines) + "\n", 1)
    assert "aliases" in str(problems(text))


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    for text in ("[" * 5000 + "]" * 5000, "a: " + "[" * 5000 + "]" * 5000):
        assert problems(text).problems


def test_named_hidden_or_non_spec_file_stays_strict(tmp_path: Path) -> None:
    f = tmp_path / "package.json"
    f.write_text('{"name": "x"}')
    with pytest.raises(SpecError) as e:
        load_file(f)
    assert "apiVersion is None" in str(e.value)
    assert iter_spec_files([f]) == [f]


def test_yaml_flow_document_starting_with_a_brace() -> None:
    text = (
        "{apiVersion: mlops-nocode/v1, kind: Playbook, metadata: {name: p1},"
        " spec: {runtime: litellm, litellm: {model: chat, prompt: hi}}}"
    )
    assert load_text(text, "f.yaml")[0].metadata.name == "p1"
    assert "not valid YAML/JSON" in str(problems(text, "f.json"))
    assert "duplicate key 'kind'" in str(problems("{kind: a, kind: b}", "f.yaml"))
