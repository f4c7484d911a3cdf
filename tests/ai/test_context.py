"""What the model is told about the catalogue (bounded), and how a spec is found in an answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_nocode.ai.context import catalogue_context
from mlops_nocode.ai.extract import documents, spec_text
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.spec import SpecError


def test_signatures_carry_types_and_parameters_within_the_bound(home: Path) -> None:
    resolver = Catalogues.configured().resolver()
    full = catalogue_context(resolver, 1024 * 1024)
    assert full.shown == full.entries >= 20
    lines = [json.loads(x) for x in full.text.splitlines()]
    train = next(x for x in lines if x["uses"].startswith("playbook/sklearn-train@"))
    assert train["runtime"] == "python" and train["inputs"] == {"dataset": "dataset"}
    assert train["outputs"] == {"model": "model", "metrics": "metrics"}
    assert train["parameters"]["estimator"]["type"] == "string" and "description" in train
    ansible = next(x for x in lines if x["uses"].startswith("playbook/ansible-configure@"))
    assert ansible["inputs"] == {"hosts": "infra?"}  # optional inputs end in ?

    terse = catalogue_context(resolver, len(full.text) - 100)  # descriptions go first
    assert terse.shown == terse.entries
    assert not any("description" in json.loads(x) for x in terse.text.splitlines())

    small = catalogue_context(resolver, 2048)  # then entries, with a note naming the rest
    assert len(small.text.encode()) <= 2048 and small.shown < small.entries
    assert small.text.splitlines()[-1].startswith(f"# {small.entries - small.shown} more entries not shown: ")


def test_the_spec_is_read_from_fenced_blocks_or_the_whole_answer() -> None:
    answer = "Sure!\n```python\nprint('not a spec')\n```\n```yaml\na: 1\n```\ntext\n```json\n{\"b\": 2}\n```"
    assert documents(answer, 4096) == [{"a": 1}, {"b": 2}]
    assert documents('{"c": 3}', 4096) == [{"c": 3}]
    with pytest.raises(SpecError, match="holds no spec"):
        spec_text("```yaml\n```", 4096)
    with pytest.raises(SpecError, match="not valid YAML/JSON") as e:
        documents("```yaml\na: [1\n```", 4096)
    assert e.value.problems[0].where.startswith("answer:")
