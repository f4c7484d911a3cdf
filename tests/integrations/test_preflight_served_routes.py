"""Launch preflight: a litellm step may call the model route a serve step of the same plan registers
(it exists once that service is up); a route neither configured nor served is still a located problem."""

from __future__ import annotations

from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.integrations.litellm.preflight import route_problems
from mlops_nocode.spec import load_file, load_text

ROOT = Path(__file__).resolve().parents[2] / "catalogue" / "playbooks"
PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: serve-then-ask, version: 1.0.0}
spec:
  parameters: {type: object, properties: {ask: {type: string, default: mine}}}
  steps:
    - {id: base, uses: playbook/instruction-dataset}
    - id: model
      uses: playbook/tiny-causal-lm
      inputs: {dataset: base.train}
    - id: serve
      uses: playbook/serve-causal-lm
      with: {route: mine}
      inputs: {model: model.model}
    - id: ask
      uses: playbook/llm-chat
      with: {model: "${{ params.ask }}", prompt: hello}
      depends_on: [serve]
"""


def _problems(tmp_path: Path, ask: str) -> list[str]:
    names = ("instruction-dataset", "tiny-causal-lm", "serve-causal-lm", "llm-chat")
    docs = [d for n in names for d in load_file(ROOT / f"{n}.yaml")]
    plan = compile_plan("pipeline/serve-then-ask", Index(docs + load_text(PIPELINE)), {"ask": ask})
    return [f"{p.what} @ {p.where}" for p in route_problems(plan, tmp_path)]


def test_a_route_served_earlier_in_the_plan_is_known(tmp_path: Path) -> None:
    assert _problems(tmp_path, "mine") == []


def test_a_route_nobody_serves_is_still_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "theirs")
    assert len(problems) == 1 and "'theirs', which is not configured" in problems[0]
    assert "configured: mine" in problems[0] and "with.model" in problems[0]
