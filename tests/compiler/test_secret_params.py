"""A parameter marked secret (`writeOnly: true`, `format: secret`/`password`) takes `${{ secrets.NAME }}`
or a binding, never a literal value in a spec: the value would be committed with the spec and shown in
its plans. The problem names the field and never repeats the value."""

from __future__ import annotations

import pytest

from mlops_nocode.compiler import compile_plan
from mlops_nocode.spec import SpecError
from tests.compiler.test_compile import catalogue, pipeline

UPLOAD = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: upload, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  parameters:
    type: object
    properties:
      token: {type: string, writeOnly: true}
      key: {type: string, format: secret}
      auth: {type: object, properties: {password: {type: string, format: password}, user: {type: string}}}
      endpoint: {type: string}
"""


def compiled(with_: str, extra: str = "") -> list[str]:
    root = pipeline("p", f"- {{id: up, uses: playbook/upload, with: {with_}}}", extra)
    try:
        compile_plan("pipeline/p", catalogue(UPLOAD, root), {})
    except SpecError as e:
        return [f"{p.where}: {p.what}" for p in e.problems]
    return []


@pytest.mark.parametrize(
    ("with_", "where"),
    [
        ("{token: hunter2-literal}", "with.token"),
        ("{key: hunter2-literal}", "with.key"),
        ("{auth: {password: hunter2-literal, user: me}}", "with.auth.password"),
    ],
)
def test_a_literal_secret_is_refused_without_repeating_it(with_: str, where: str) -> None:
    found = compiled(with_)
    assert found == [f"pipeline/p > steps[0] (up) > {where}: secret parameter {where.split('.')[-1]!r} "
                     "is given as a literal value"]  # fmt: skip
    assert "hunter2" not in "".join(found)


def test_a_secret_reference_or_a_binding_is_accepted() -> None:
    params = "parameters: {type: object, properties: {k: {type: string, default: x}}}"
    with_ = '{token: "${{ secrets.HF_TOKEN }}", key: "${{ params.k }}", endpoint: plain}'
    assert compiled(with_, params) == []
