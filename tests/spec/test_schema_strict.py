"""The exported JSON Schema rejects what the loader rejects: names, versions, refs, connections, runtimes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import yaml

from mlops_nocode.catalogue import builtin_path
from mlops_nocode.spec import SpecError, load_text
from mlops_nocode.spec.schema import json_schema

PLAYBOOK: dict[str, Any] = yaml.safe_load("""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: p1, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "pkg.mod:func"}
  resources: {cpu: 1, memory: 512Mi}
  timeout: 10m
""")
PIPELINE: dict[str, Any] = yaml.safe_load("""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: pipe, version: 1.0.0-rc.1+build.5}
spec:
  steps:
    - {id: load, uses: playbook/p1@1.0.0}
    - id: train
      uses: pipeline/other@^1.2
      inputs: {dataset: load.dataset, extra: inputs.rows}
      depends_on: [load]
      timeout: 1.5h
""")

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        node: Any = doc
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value

    return edit


def _delete(path: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        node: Any = doc
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        del node[last]

    return edit


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def valid(validator: jsonschema.Draft202012Validator, doc: dict[str, Any]) -> bool:
    return not list(validator.iter_errors(doc))


def test_good_documents_validate(validator: jsonschema.Draft202012Validator) -> None:
    assert valid(validator, PLAYBOOK) and valid(validator, PIPELINE)
    for doc in (PLAYBOOK, PIPELINE):
        load_text(yaml.safe_dump(doc))


def test_every_builtin_spec_validates(validator: jsonschema.Draft202012Validator) -> None:
    files = sorted(builtin_path().rglob("*.yaml"))
    assert files
    for f in files:
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            errors = list(validator.iter_errors(doc))
            assert not errors, (f, errors[0].message)


BAD_PLAYBOOKS: dict[str, Edit] = {
    "name uppercase": _set("metadata.name", "Hello"),
    "name underscore": _set("metadata.name", "my_step"),
    "name leading dash": _set("metadata.name", "-x"),
    "name too long": _set("metadata.name", "a" * 64),
    "version two parts": _set("metadata.version", "1.0"),
    "version leading zero": _set("metadata.version", "01.0.0"),
    "version v prefix": _set("metadata.version", "v1.0.0"),
    "version float": _set("metadata.version", 1.0),
    "entrypoint no function": _set("spec.python.entrypoint", "pkg.mod"),
    "entrypoint space": _set("spec.python.entrypoint", "pkg mod:f"),
    "memory unit": _set("spec.resources.memory", "2GB"),
    "memory words": _set("spec.resources.memory", "lots"),
    "timeout unit": _set("spec.timeout", "10 minutes"),
    "timeout days": _set("spec.timeout", "2d"),
    "timeout zero": _set("spec.timeout", 0),
    "timeout zero seconds": _set("spec.timeout", "0s"),
    "timeout zero point zero": _set("spec.timeout", "0.0m"),
    "timeout over a year": _set("spec.timeout", 1e9),
    "cpu zero": _set("spec.resources.cpu", 0),
    "gpu negative": _set("spec.resources.gpu", -1),
    "memory too many digits": _set("spec.resources.memory", "9" * 400 + "Gi"),
    "port name with a space": _set("spec.outputs", {"my model": {"type": "model"}}),
    "secret name with =": _set("spec.secrets", ["A=B"]),
    "env name with =": _set("spec.command", {"argv": ["true"], "env": {"A=B": "x"}}),
    "python runtime without section": _delete("spec.python"),
    "python runtime with null section": _set("spec.python", None),
    "command runtime without section": _set("spec.runtime", "command"),
    "nested x- field": _set("spec.x-note", "hi"),
}
BAD_PIPELINES: dict[str, Edit] = {
    "step id uppercase": _set("spec.steps.0.id", "Load"),
    "step id dot": _set("spec.steps.0.id", "load.x"),
    "uses no kind": _set("spec.steps.0.uses", "p1"),
    "uses unknown kind": _set("spec.steps.0.uses", "job/p1"),
    "uses bad name": _set("spec.steps.0.uses", "playbook/P1"),
    "uses path": _set("spec.steps.0.uses", "playbook/../p1"),
    "uses empty version": _set("spec.steps.0.uses", "playbook/p1@"),
    "input no dot": _set("spec.steps.1.inputs.dataset", "load"),
    "input bad step": _set("spec.steps.1.inputs.dataset", "Load.dataset"),
    "input bad output": _set("spec.steps.1.inputs.dataset", "load.1x"),
    "input three parts": _set("spec.steps.1.inputs.dataset", "a.b.c"),
    "step timeout unit": _set("spec.steps.1.timeout", "soon"),
    "step timeout zero": _set("spec.steps.1.timeout", "0s"),
    "step timeout zero number": _set("spec.steps.1.timeout", 0),
    "output without .OUTPUT": _set("spec.outputs", {"d": "load"}),
    "output three parts": _set("spec.outputs", {"d": "a.b.c"}),
    "depends_on bad id": _set("spec.steps.1.depends_on", ["Load"]),
}


@pytest.mark.parametrize("case", sorted(BAD_PLAYBOOKS))
def test_bad_playbooks_are_rejected(validator: jsonschema.Draft202012Validator, case: str) -> None:
    doc = copy.deepcopy(PLAYBOOK)
    BAD_PLAYBOOKS[case](doc)
    assert not valid(validator, doc)
    with pytest.raises(SpecError):
        load_text(yaml.safe_dump(doc))


@pytest.mark.parametrize("case", sorted(BAD_PIPELINES))
def test_bad_pipelines_are_rejected(validator: jsonschema.Draft202012Validator, case: str) -> None:
    doc = copy.deepcopy(PIPELINE)
    BAD_PIPELINES[case](doc)
    assert not valid(validator, doc)
    if case != "depends_on bad id":  # the compiler, not the loader, checks that the step exists
        with pytest.raises(SpecError):
            load_text(yaml.safe_dump(doc))


def test_each_runtime_needs_its_own_section(validator: jsonschema.Draft202012Validator) -> None:
    doc = copy.deepcopy(PLAYBOOK)
    doc["spec"]["runtime"] = "litellm"
    del doc["spec"]["python"]
    assert not valid(validator, doc)  # a litellm step names its model route
    doc["spec"]["litellm"] = {"model": "chat", "prompt": "hi"}
    assert valid(validator, doc)
    del doc["spec"]["litellm"]
    doc["spec"]["runtime"] = "container"
    assert not valid(validator, doc)  # a container step names its image
    doc["spec"]["container"] = {"image": "busybox:1.36"}
    assert valid(validator, doc)
    del doc["spec"]["container"]
    doc["spec"]["runtime"] = "command"
    doc["spec"]["command"] = {"argv": ["echo", "hi"]}
    assert valid(validator, doc)


def test_top_level_extension_fields_are_allowed(validator: jsonschema.Draft202012Validator) -> None:
    for base in (PLAYBOOK, PIPELINE):
        doc = copy.deepcopy(base)
        doc["x-common"] = {"anything": [1, 2]}
        assert valid(validator, doc)
        doc["y-common"] = 1
        assert not valid(validator, doc)


@pytest.mark.parametrize("memory", ["512Mi", "2Gi", "1.5G", "1024", "1Ti"])
@pytest.mark.parametrize("timeout", ["500ms", "30s", "10m", "2h", "90", "1.5", 45, 0.5])
def test_good_values_validate(validator: jsonschema.Draft202012Validator, memory: str, timeout: Any) -> None:
    doc = copy.deepcopy(PLAYBOOK)
    doc["spec"]["resources"]["memory"] = memory
    doc["spec"]["timeout"] = timeout
    assert valid(validator, doc)
