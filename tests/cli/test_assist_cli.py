"""`mlops assist` as a real process against a route on the scripted backend (it stands in for a model):
shows the spec, validation and diff, saves only with --save and a confirmation; the provider key comes
from the environment (the secret the route names) and never reaches the conversation file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.ai.support import PIPELINE, fenced
from tests.fakellm import FakeLLM

KEY = "sk-live-7f3a9c1e5b2d4f60"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM(api_key=KEY)
    yield backend
    backend.stop()


def mlops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", *args], capture_output=True, text=True
    )


def assist(
    *args: str, answer: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "assist", *args],
        input=answer,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", "FAKE_LLM_KEY": KEY, **(env or {})},
        timeout=300,
    )


def test_no_model_route_is_a_located_problem(home: Path) -> None:
    r = assist("train a forest on iris")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "ASSISTANT_MODEL" in r.stderr and "routes.yaml" in r.stderr


def test_assist_shows_then_saves_only_when_confirmed(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    save_route(
        home,
        ModelRoute(name="assistant", model="openai/fake", api_base=llm.url, api_key_secret="FAKE_LLM_KEY"),
    )
    broken = PIPELINE.replace("load.dataset", "load.data")
    llm.script(chat=[fenced(broken), fenced(PIPELINE)])
    r = assist(f"train a random forest on iris (my key is {KEY})")
    assert r.returncode == 0, r.stderr
    assert "kind: Pipeline" in r.stdout and "uses: playbook/sklearn-train" in r.stdout
    assert "pipeline/iris-forest@1.0.0 is valid (1 repair(s))" in r.stderr
    assert "nothing saved" in r.stderr
    assert all(q["authorization"] for q in llm.requests())
    conv_files = list((home / "assistant" / "conversations").glob("*.json"))
    assert len(conv_files) == 1 and KEY not in conv_files[0].read_text()
    assert "my key is ***" in conv_files[0].read_text()

    refused = assist("--continue", "last", "--save", answer="n\n")
    assert refused.returncode == 1 and "not saved" in refused.stderr
    assert mlops("catalogue", "show", "pipeline/iris-forest").returncode != 0

    saved = assist("--continue", "last", "--save", answer="y\n")
    assert saved.returncode == 0, saved.stderr
    assert "Save pipeline/iris-forest@1.0.0 into the catalogue?" in saved.stderr
    assert "saved pipeline/iris-forest@1.0.0" in saved.stderr
    history = mlops("catalogue", "history", "pipeline/iris-forest", "--json")
    assert "assistant: train a random forest on iris" in history.stdout, history.stdout
    assert KEY not in history.stdout


def test_assist_json_and_a_give_up(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    save_route(
        home, ModelRoute(name="writer", model="openai/fake", api_base=llm.url, api_key_secret="FAKE_LLM_KEY")
    )
    llm.script(chat=[{"content": "I cannot help with that."}] * 2)
    r = assist("--json", "a forest", env={"ASSISTANT_MODEL": "writer", "ASSISTANT_MAX_REPAIRS": "1"})
    assert r.returncode == 2, r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] is False and out["repairs"] == 1 and out["problems"]
    assert len(out["conversation"]) == 16
    llm.script(chat=[fenced(PIPELINE)])
    r = assist("--json", "--save", "--yes", "--continue", out["conversation"], "try again",
               env={"ASSISTANT_MODEL": "writer"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["saved"][0]["ref"] == "pipeline/iris-forest@1.0.0"
