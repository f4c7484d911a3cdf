"""Every python playbook of the catalogue matches the signature of the function it names."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mlops_nocode.spec import Playbook, load_file

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "catalogue" / "playbooks"
PLAYBOOK_FILES = sorted(PLAYBOOKS_DIR.glob("*.yaml"))
PYTHON_FILES = [p for p in PLAYBOOK_FILES if "\n  runtime: python\n" in p.read_text(encoding="utf-8")]


def _playbook(path: Path) -> Playbook:
    docs = load_file(path)
    assert len(docs) == 1 and isinstance(docs[0], Playbook), f"{path.name}: expected one Playbook document"
    return docs[0]


def _entrypoint(playbook: Playbook) -> Callable[..., Any]:
    assert playbook.spec.python is not None
    module, name = playbook.spec.python.entrypoint.split(":")
    function = getattr(importlib.import_module(module), name)
    assert callable(function)
    return function  # type: ignore[no-any-return]


def test_the_catalogue_has_the_expected_playbooks() -> None:
    assert {p.stem for p in PLAYBOOK_FILES} >= {
        "sklearn-dataset", "load-table", "train-test-split", "scale-features", "sales-features",
        "log-features", "sklearn-train", "evaluate-classifier", "evaluate-regressor", "cross-validate",
        "isolation-forest", "synthetic-server-logs", "synthetic-sales", "export-model", "batch-predict",
    }  # fmt: skip


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: p.stem)
def test_playbook_metadata(path: Path) -> None:
    playbook = _playbook(path)
    assert playbook.metadata.name == path.stem
    assert playbook.metadata.version == "1.0.0"
    assert playbook.metadata.description and playbook.metadata.labels.get("category")
    assert playbook.spec.runtime == "python" or path not in PYTHON_FILES
    assert playbook.spec.retries in (0, 1) and playbook.spec.timeout
    assert playbook.spec.outputs, "a playbook must have outputs"
    for port in [*playbook.spec.inputs.values(), *playbook.spec.outputs.values()]:
        # an http answer is JSON when it parses, text otherwise: `any` is its honest type
        assert (port.type != "any" or playbook.spec.runtime == "http") and port.description


@pytest.mark.parametrize("path", PLAYBOOK_FILES, ids=lambda p: p.stem)
def test_parameter_schema_is_a_form(path: Path) -> None:
    schema = _playbook(path).spec.parameters
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        assert {"type", "title", "description"} <= set(prop), f"{name} lacks type, title or description"
        assert name in required or "default" in prop, f"{name} is neither required nor defaulted"
    defaults = {k: v["default"] for k, v in schema["properties"].items() if "default" in v}
    jsonschema.validate({**defaults, **dict.fromkeys(required, "x")}, schema)


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: p.stem)
def test_function_signature_matches_playbook(path: Path) -> None:
    playbook = _playbook(path)
    signature = inspect.signature(_entrypoint(playbook))
    params = signature.parameters
    properties: dict[str, Any] = playbook.spec.parameters.get("properties", {})
    inputs = playbook.spec.inputs
    assert not set(properties) & set(inputs), "a parameter and an input port share a name"
    assert "ctx" in params and params["ctx"].kind is inspect.Parameter.KEYWORD_ONLY
    assert set(params) - {"ctx"} == set(properties) | set(inputs)
    for name, param in params.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, f"{name} must be keyword-only"
        assert param.annotation is not inspect.Parameter.empty, f"{name} has no type hint"
    for name, port in inputs.items():
        expected = None if port.optional else inspect.Parameter.empty
        assert params[name].default is expected, (
            f"input {name}: optional inputs default to None, others have none"
        )
    required = set(playbook.spec.parameters.get("required", []))
    for name, prop in properties.items():
        default = params[name].default
        if name in required:
            assert default is inspect.Parameter.empty, f"required parameter {name} must have no default"
        else:
            normalized = list(default) if isinstance(default, tuple) else default
            assert normalized == prop["default"], f"{name}: function default {default!r} != schema default"
