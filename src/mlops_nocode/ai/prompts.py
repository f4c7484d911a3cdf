"""The messages the model receives: the rules and the catalogue (system), the user's request, and the
repair message carrying the located problems of its last answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_nocode.ai.guard import PARAMS_KEY, SAMPLES_KEY, Mode
from mlops_nocode.spec import Problem

_PIPELINE_EXAMPLE = """\
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: iris-forest, version: 1.0.0, description: Train a forest on iris}
spec:
  parameters: {type: object, properties: {trees: {type: integer, default: 100}}}
  steps:
    - id: load
      uses: playbook/sklearn-dataset@1.0.0
      with: {name: iris}
    - id: train
      uses: playbook/sklearn-train
      with: {estimator: random_forest, n_estimators: "${{ params.trees }}"}
      inputs: {dataset: load.dataset}
  outputs: {model: train.model}"""

_PLAYBOOK_EXAMPLE = f"""\
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: shout, version: 0.1.0, description: Upper-case a text}}
spec:
  runtime: python
  python:
    entrypoint: main
    code: |
      import json

      def main(ctx, text, times=2):
          value = json.load(open(text))
          return {{"shouted": value.upper() * times}}
  inputs: {{text: {{type: text}}}}
  outputs: {{shouted: {{type: text}}}}
  parameters: {{type: object, properties: {{times: {{type: integer, default: 2}}}}}}
{SAMPLES_KEY}: {{text: {{value: hello}}}}
{PARAMS_KEY}: {{times: 3}}"""

_RULES = {
    "pipeline": (
        "Write ONE Pipeline (or MetaPipeline, whose steps use pipelines) that does what the user asks. "
        "Every step's `uses` must be an entry of the catalogue below (KIND/NAME or KIND/NAME@VERSION); "
        "never invent an entry, never define a Playbook, never use command or container steps. "
        "Wire inputs as `STEP_ID.OUTPUT` with matching port types; give parameters that the entry's "
        "schema accepts; `${{ params.X }}` is the only expression you may use."
    ),
    "playbook": (
        "Write ONE Playbook with `runtime: python` whose Python source is in spec.python.code and whose "
        "spec.python.entrypoint names a function of it: main(ctx, <one argument per input>, <parameters "
        "as keyword arguments>) returning a dict of its outputs. A value input (text, json, any) arrives "
        "as the path of a JSON file holding the value; a file input (file, dataset, model, directory) "
        "as its path. Use the standard library, numpy, pandas or scikit-learn only. No secrets, no files. "
        f"Add `{SAMPLES_KEY}` (a sample per input: {{value: ...}} or {{filename: ..., text: ...}}) and "
        f"`{PARAMS_KEY}` (parameters for a test run) at the top level: the playbook is run once on them "
        "before it is offered."
    ),
}


def system_prompt(mode: Mode, catalogue: str) -> str:
    """The rules, the spec's shape by example, and the catalogue's signatures."""
    example = _PIPELINE_EXAMPLE if mode == "pipeline" else _PLAYBOOK_EXAMPLE
    return (
        "You write specs for the MLOps No-Code platform (apiVersion mlops-nocode/v1). "
        + _RULES[mode]
        + " Names are DNS-1123 labels (lowercase letters, digits, '-'); versions are semver strings. "
        "Answer with the spec only, in one ```yaml fenced block, no anchors or aliases.\n\n"
        f"Example:\n```yaml\n{example}\n```\n\n"
        "Catalogue (one entry per line: uses, runtime, inputs and outputs with their types, parameters; "
        "an input type ending in ? is optional):\n" + catalogue
    )


def repair_prompt(problems: Sequence[Problem]) -> str:
    """The located problems of the last answer, asking for the whole spec again."""
    lines = [f"- {p.where or 'answer'}: {p.what}" + (f" (fix: {p.fix})" if p.fix else "") for p in problems]
    return (
        "Your spec was checked and refused. Problems, each located:\n"
        + "\n".join(lines[:40])
        + ("\n- ..." if len(lines) > 40 else "")
        + "\nAnswer with the whole corrected spec in one ```yaml block."
    )


def messages(
    mode: Mode, catalogue: str, history: Sequence[dict[str, Any]], prompt: str
) -> list[dict[str, Any]]:
    """The conversation sent to the model: system, earlier turns, the new request."""
    return [
        {"role": "system", "content": system_prompt(mode, catalogue)},
        *history,
        {"role": "user", "content": prompt},
    ]
