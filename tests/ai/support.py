"""Answers a model could give the assistant (scripted into the fake backend), and the assistant wired
to a real route on that backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_nocode.ai.assistant import Assistant
from mlops_nocode.ai.model import route_model
from mlops_nocode.ai.session import build
from mlops_nocode.ai.settings import AssistantSettings
from mlops_nocode.catalogue.service import Catalogues
from mlops_nocode.compiler.check import check_doc
from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route

PIPELINE = """\
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: iris-forest, version: 1.0.0, description: A random forest on iris}
spec:
  steps:
    - id: load
      uses: playbook/sklearn-dataset@1.0.0
      with: {name: iris}
    - id: train
      uses: playbook/sklearn-train
      with: {estimator: random_forest}
      inputs: {dataset: load.dataset}
  outputs: {model: train.model}
"""

PLAYBOOK = """\
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: word-count, version: 0.1.0, description: Count the words of a text}
spec:
  runtime: python
  python:
    entrypoint: main
    code: |
      import json

      def main(ctx, text, lower=True):
          words = json.load(open(text)).split()
          if lower:
              words = [w.lower() for w in words]
          return {"count": len(words), "first": FIRST}
  inputs: {text: {type: text}}
  outputs: {count: {type: json}, first: {type: text}}
  parameters: {type: object, properties: {lower: {type: boolean, default: true}}}
x-samples: {text: {value: Hello big World}}
x-parameters: {lower: true}
"""


def fenced(spec: str, before: str = "Here is the spec:") -> dict[str, Any]:
    """A chat reply holding `spec` in a ```yaml block."""
    return {"content": f"{before}\n```yaml\n{spec}```\nIt loads iris and trains."}


def route_to(home: Path, url: str, name: str = "assistant") -> None:
    save_route(home, ModelRoute(name=name, model="openai/fake", api_base=url))


def assistant(home: Path, url: str, **settings: Any) -> Assistant:
    """The assistant as `mlops assist` builds it, calling the route `assistant` on the fake backend."""
    route_to(home, url)
    s = AssistantSettings(**settings)
    cats = Catalogues.configured(check_doc)
    model = route_model(home, s, lambda names: {}, {})
    return build(cats.resolver(), model, s, cats)
