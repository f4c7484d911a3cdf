"""`mlops run` of a pipeline made of the built-in llm-chat and llm-judge playbooks against a real scripted
OpenAI-compatible backend on loopback (it stands in for a model): the answer reaches the judge, the
judge's score is a metric, the route's key is sent and never printed or stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.conftest import CliResult
from tests.fakellm import FakeLLM

KEY = "sk-cli-route-key-3f9a61d2"

PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: answer-and-judge, version: 1.0.0}
spec:
  parameters: {type: object, properties: {question: {type: string}}}
  steps:
    - id: answer
      uses: playbook/llm-chat
      with: {prompt: "${{ params.question }}"}
    - id: judge
      uses: playbook/llm-judge
      with: {rubric: "Names the capital of France.", question: "${{ params.question }}"}
      inputs: {answer: answer.answer}
  outputs: {answer: answer.answer, verdict: judge.verdict, score: judge.metrics}
"""


@pytest.fixture
def keyed() -> Iterator[FakeLLM]:
    backend = FakeLLM(api_key=KEY)
    yield backend
    backend.stop()


def test_mlops_run_answers_then_judges(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], home: Path, keyed: FakeLLM
) -> None:
    save_route(
        home, ModelRoute(name="chat", model="openai/fake", api_base=keyed.url, api_key_secret="CHAT_KEY")
    )
    keyed.script(chat=[{"content": "Paris."}, {"json": {"score": 0.9, "reasoning": "correct"}}])
    f = write_spec(PIPELINE)
    r = mlops("run", str(f), "--json", "--set", "question=Capital of France?", env={"CHAT_KEY": KEY})
    assert r.code == 0, r
    out = r.json()["outputs"]
    assert out["answer"] == "Paris."
    assert out["verdict"] == {"score": 0.9, "reasoning": "correct"}
    assert out["score"]["score"] == 0.9 and out["score"]["total_tokens"] > 0
    judged = keyed.requests()[-1]["body"]["messages"]
    assert "<answer>\nParis.\n</answer>" in judged[-1]["content"]
    assert KEY not in r.stdout + r.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_mlops_run_without_the_key_says_which_secret(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], home: Path, keyed: FakeLLM
) -> None:
    save_route(
        home, ModelRoute(name="chat", model="openai/fake", api_base=keyed.url, api_key_secret="CHAT_KEY")
    )
    r = mlops("run", str(write_spec(PIPELINE)), "--json", "--set", "question=q")
    assert r.code != 0
    text = r.stdout + r.stderr
    assert "model route 'chat' needs secret 'CHAT_KEY', which is not set" in text, r
    assert keyed.requests() == []


EMBED = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: texts, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [sh, -c, 'printf "[\\"red apple\\", \\"blue sky\\"]" > "$1"', sh, "${{ outputs.t }}"]
    outputs: {t: t.json}
  outputs: {t: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: embed-demo, version: 1.0.0}
spec:
  steps:
    - {id: texts, uses: playbook/texts}
    - {id: embed, uses: playbook/llm-embed, inputs: {texts: texts.t}}
  outputs: {vectors: embed.vectors, table: embed.table}
"""


def test_mlops_run_embeds_texts_from_an_upstream_step(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], home: Path, keyed: FakeLLM
) -> None:
    import pandas as pd

    route = ModelRoute(
        name="embed", kind="embedding", model="openai/e", api_base=keyed.url, api_key_secret="K"
    )
    save_route(home, route)
    r = mlops("run", str(write_spec(EMBED)), "--json", env={"K": KEY})
    assert r.code == 0, r
    vectors = r.json()["outputs"]["vectors"]
    assert len(vectors) == 2 and len(vectors[0]) == 64
    assert keyed.requests()[-1]["body"]["input"] == ["red apple", "blue sky"]
    [table] = home.rglob("table.parquet")
    assert list(pd.read_parquet(table)["text"]) == ["red apple", "blue sky"]


def test_mlops_validate_locates_a_bad_litellm_section(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path]
) -> None:
    f = write_spec(
        """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: bad-llm, version: 1.0.0}
spec:
  runtime: litellm
  litellm:
    model: chat
    messages: [{role: user, content: "Token: ${{ secrets.TOKEN }} ${{ inputs.ghost }}"}]
    json_schema: {type: object, properties: {score: {type: wrong}}}
    outputs: {answer: json}
  outputs: {answer: {type: text}}
"""
    )
    r = mlops("validate", str(f))
    assert r.code != 0
    text = r.stdout + r.stderr
    assert "playbook/bad-llm@1.0.0 > spec.litellm.messages[0].content" in text, r
    assert "unsupported expression '${{ secrets.TOKEN }}'" in text
    assert "'${{ inputs.ghost }}' names no input" in text
    assert "spec.litellm.json_schema.properties.score.type" in text and "not a valid JSON Schema" in text
    assert "output 'answer' is a text, which cannot hold the json" in text
    assert "Traceback" not in text


def test_a_route_nobody_configured_is_refused_before_anything_runs(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], home: Path
) -> None:
    save_route(
        home, ModelRoute(name="embed", model="openai/fake", kind="embedding", api_base="http://127.0.0.1:9")
    )
    r = mlops("run", str(write_spec(PIPELINE)), "--json", "--set", "question=q")
    assert r.code == 2, r
    problems = r.json()["problems"]
    assert {p["where"].rsplit(" > ", 1)[-1] for p in problems} == {"with.model"}, problems
    assert "calls model route 'chat', which is not configured (configured: embed)" in problems[0]["what"]
    assert not (home / "runs").exists() or not any((home / "runs").iterdir()), "nothing may have run"
    save_route(
        home, ModelRoute(name="chat", model="openai/fake", kind="embedding", api_base="http://127.0.0.1:9")
    )
    r = mlops("run", str(write_spec(PIPELINE)), "--json", "--set", "question=q")
    assert r.code == 2 and "makes a chat call on model route 'chat', an embedding route" in r.stdout, r
