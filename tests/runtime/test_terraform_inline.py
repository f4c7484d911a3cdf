"""A terraform playbook that carries its module inline (`terraform.files`) runs from any catalogue: no
folder beside a spec file is needed (a Git catalogue, the gateway's, stores one document per version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import SpecError, load_text

MAIN_TF = """
variable "name" { type = string }
resource "terraform_data" "box" {
  input = var.name
}
output "box" {
  value = { id = terraform_data.box.id, name = var.name }
}
"""


def docs(files: str, module: str = "") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: tf, version: 1.0.0}}
spec:
  runtime: terraform
  terraform:
    {module}
    files: {files}
    variables: {{name: "${{{{ params.name }}}}"}}
  outputs: {{box: {{type: infra}}}}
  parameters: {{type: object, properties: {{name: {{type: string}}}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps: [{{id: infra, uses: playbook/tf, with: {{name: 'it"s ${{x}}'}}}}]
  outputs: {{box: infra.box}}
"""


def test_an_inline_module_runs_without_a_spec_folder(tmp_path: Path) -> None:
    plan = compile_plan("pipeline/t", Index(load_text(docs(json.dumps({"main.tf": MAIN_TF})))))
    assert plan.steps[0].spec_dir is None
    r = Runner(plan, home=tmp_path).run()
    assert r.status == "succeeded", r.summary()
    assert r.outputs["box"]["name"] == 'it"s ${x}'
    assert not list((r.run_dir / "steps").glob("*.module")), "the written module is removed once installed"


@pytest.mark.parametrize(
    ("files", "module", "expected"),
    [
        ('{"main.tf": "x"}', "module: mod", "names its module exactly once"),
        ("{}", "", "names its module exactly once"),
        ('{"../main.tf": "x"}', "", "is not a module file name"),
        ('{"run.sh": "x"}', "", "is not a module file name"),
    ],
)
def test_module_and_files_are_checked(files: str, module: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load_text(docs(files, module))
