"""Plan-time checks of `http:` sections: each mistake knowable before running is a located error of
`mlops validate` (the CLI case), of compile_plan (the rest), and nothing runs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.spec import SpecError, load_text
from tests.conftest import CliResult


def spec(http: str, outputs: str = "{body: {type: json}}", inputs: str = "{}") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: call, version: 1.0.0}}
spec:
  runtime: http
  http:
{textwrap.indent(textwrap.dedent(http).strip(), "    ")}
  inputs: {inputs}
  outputs: {outputs}
  parameters: {{type: object, properties: {{p: {{type: string}}}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps: [{{id: call, uses: playbook/call, with: {{p: x}}}}]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/t", Index(load_text(text)))
    return [f"{p.where}: {p.what} | {p.fix}" for p in e.value.problems]


def test_a_valid_section_compiles_into_the_plan_step() -> None:
    plan = compile_plan(
        "pipeline/t",
        Index(
            load_text(
                spec('method: POST\nurl: "https://example.org/${{ params.p }}"\njson: {a: 1}\noutput: body')
            )
        ),
    )
    step = plan.steps[0]
    assert step.runtime == "http"
    assert step.config is not None and step.config["url"] == "https://example.org/${{ params.p }}"
    assert step.config["json"] == {"a": 1}


@pytest.mark.parametrize(
    ("section", "where", "what"),
    [
        ("url: ftp://example.org/x\noutput: body", "spec.http.url", "is not an http:// or https:// URL"),
        (
            "url: https://x\nheaders: {'X Bad': v}\noutput: body",
            "spec.http.headers",
            "not a valid HTTP header",
        ),
        (
            "url: https://x\nheaders: {Host: evil}\noutput: body",
            "spec.http.headers",
            "set by the HTTP client",
        ),
        ("method: GET\nurl: https://x\njson: {a: 1}\noutput: body", "spec.http", "a GET request has no body"),
        ("method: POST\nurl: https://x\njson: {}\nform: {}\noutput: body", "spec.http", "one body"),
        ("url: https://x\noutput: nope", "spec.http.output", "'nope' is not a declared output"),
        ("url: https://x", "spec.outputs.body", "output 'body' is never filled"),
        ("url: http://169.254.169.254/latest\noutput: body", "spec.http.url", "is link-local"),
        ("url: https://user:pw@x/\noutput: body", "spec.http.url", "user name or password"),
        ("url: 'https://x/${{ params.nope }}'\noutput: body", "spec.http.url", "names no param"),
        ("url: 'https://x/${{ env.HOME }}'\noutput: body", "spec.http.url", "unsupported expression"),
        ("url: https://x\nexpect: [700]\noutput: body", "spec.http.expect", "less than or equal to 599"),
    ],
)
def test_mistakes_are_located_errors(section: str, where: str, what: str) -> None:
    found = problems(spec(section))
    assert any(where in p and what in p for p in found), found


def test_file_inputs_are_sent_only_as_body_file() -> None:
    found = problems(
        spec(
            "method: POST\nurl: 'https://x/${{ inputs.data }}'\noutput: body",
            inputs="{data: {type: dataset}}",
        )
    )
    assert any("input 'data' is a dataset (a file): its path is never sent" in p for p in found), found
    assert any("body_file: ${{ inputs.data }}" in p for p in found), found
    found = problems(
        spec(
            "method: POST\nurl: https://x\nbody_file: '${{ inputs.v }}'\noutput: body",
            inputs="{v: {type: json}}",
        )
    )
    assert any("body_file names input 'v', a json" in p for p in found), found


def test_a_directory_output_cannot_hold_a_body() -> None:
    found = problems(spec("url: https://x\noutput: body", outputs="{body: {type: directory}}"))
    assert any("is a directory" in p for p in found), found


def test_validate_locates_a_literal_ftp_url(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path]
) -> None:
    f = write_spec(spec("url: ftp://files.example.org/x\noutput: body"))
    r = mlops("validate", str(f))
    assert r.code == 2, r
    text = " ".join(r.stderr.split())  # the console wraps long lines
    assert "(Playbook call) > spec.http.url" in text
    assert "'ftp://files.example.org/x' is not an http:// or https:// URL: write the full URL" in text
