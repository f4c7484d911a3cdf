"""The exported JSON Schema knows `python.code`: an editor accepts and refuses what the loader does."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from mlops_nocode.spec import SpecError, load_text
from mlops_nocode.spec.schema import json_schema


def playbook(python: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "p"},
        "spec": {"runtime": "python", "python": python},
    }


@pytest.mark.parametrize(
    ("python", "ok"),
    [
        ({"entrypoint": "pkg.mod:f"}, True),
        ({"code": "def main():\n    return {}\n"}, True),
        ({"code": "def run():\n    return {}\n", "entrypoint": "run"}, True),
        ({"code": "def main(): pass", "entrypoint": "pkg.mod:main"}, False),
        ({"entrypoint": "main"}, False),
        ({}, False),
        ({"code": "#" * (256 * 1024 + 1)}, False),
    ],
)
def test_schema_and_loader_agree_on_python_sections(python: dict[str, Any], ok: bool) -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = playbook(python)
    assert (not list(jsonschema.Draft202012Validator(schema).iter_errors(doc))) is ok
    if ok:
        load_text(yaml.safe_dump(doc))
    else:
        with pytest.raises(SpecError):
            load_text(yaml.safe_dump(doc))
