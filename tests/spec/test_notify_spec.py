"""`spec.notify`: a pipeline's default notification targets, checked by the loader with located problems,
and refused alike by the exported JSON Schema."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml

from mlops_nocode.spec import Pipeline, SpecError, parse_document
from mlops_nocode.spec.schema import json_schema

PIPELINE: dict[str, Any] = yaml.safe_load("""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: told, version: 1.0.0}
spec:
  steps: [{id: a, uses: playbook/p1}]
  notify:
    - {type: slack, url: "https://hooks.slack.com/services/T0/B0/x", events: [run.failed]}
    - {type: email, to: [ml-team@example.org]}
    - {type: n8n, url: "https://n8n.example.org/webhook/abc?x=1"}
""")


def _with(target: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(PIPELINE)
    doc["spec"]["notify"] = [target]
    return doc


def test_a_pipeline_carries_its_targets_and_the_schema_agrees() -> None:
    doc = parse_document(PIPELINE)
    assert isinstance(doc, Pipeline)
    slack, mail, n8n = doc.spec.notify
    assert slack.events == ["run.failed"] and mail.to == ["ml-team@example.org"]
    assert n8n.events == ["run.succeeded", "run.failed", "run.cancelled"]
    jsonschema.validate(PIPELINE, json_schema())


@pytest.mark.parametrize(
    ("target", "where", "words"),
    [
        ({"type": "email", "to": ["a@example.org\r\nBcc: b@example.org"]}, "notify[0].to", "not an e-mail"),
        ({"type": "email", "to": []}, "notify[0]", "needs `to`"),
        ({"type": "email", "to": ["a@example.org"], "url": "https://x.org"}, "notify[0]", "no `url`"),
        ({"type": "slack"}, "notify[0]", "needs `url`"),
        ({"type": "slack", "url": "https://x.org", "to": ["a@example.org"]}, "notify[0]", "no `to`"),
        ({"type": "webhook", "url": "ftp://x.org/hook"}, "notify[0].url", "not a usable"),
        ({"type": "webhook", "url": "https://u:p@x.org/hook"}, "notify[0].url", "not a usable"),
        ({"type": "webhook", "url": "https://x.org/a b"}, "notify[0].url", "not a usable"),
        ({"type": "webhook", "url": "https://x.org", "events": ["run.exploded"]}, "notify[0].events[0]", ""),
        ({"type": "webhook", "url": "https://x.org", "secret": "0123456789abcdef"}, "notify[0].secret", ""),
        ({"type": "pager", "url": "https://x.org"}, "notify[0].type", ""),
    ],
)
def test_bad_targets_are_located_and_the_schema_refuses_them(
    target: dict[str, Any], where: str, words: str
) -> None:
    doc = _with(target)
    with pytest.raises(SpecError) as e:
        parse_document(doc)
    problem = e.value.problems[0]
    assert problem.where.endswith(f"spec.{where}"), problem
    assert words in problem.what and problem.fix
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())
