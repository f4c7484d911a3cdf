"""The assistant against a real route on the scripted OpenAI-compatible backend (it stands in for a
model): first-time valid pipelines, repairs carrying located problems, giving up, the diff."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_nocode.ai.conversation import FileStore
from mlops_nocode.ai.session import turn
from tests.ai.support import PIPELINE, assistant, fenced
from tests.fakellm import FakeLLM


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


@pytest.fixture(autouse=True)
def _fresh(llm: FakeLLM) -> None:
    llm.reset()


def test_valid_pipeline_first_time_with_the_catalogue_as_context(home: Path, llm: FakeLLM) -> None:
    llm.script(chat=[fenced(PIPELINE)])
    result = assistant(home, llm.url).write("train a random forest on iris", "pipeline")
    assert result.valid and result.repairs == 0 and result.problems == []
    assert result.ref == "pipeline/iris-forest@1.0.0" and result.diff == ""
    assert result.spec is not None and result.spec["spec"]["steps"][1]["uses"] == "playbook/sklearn-train"
    sent = llm.requests()
    assert len(sent) == 1
    system = sent[0]["body"]["messages"][0]["content"]
    assert '"uses":"playbook/sklearn-train@1.0.0"' in system and '"dataset":"dataset"' in system
    assert sent[0]["body"]["messages"][-1] == {"role": "user", "content": "train a random forest on iris"}


def test_an_invalid_spec_is_repaired_with_its_located_problem(home: Path, llm: FakeLLM) -> None:
    broken = PIPELINE.replace("inputs: {dataset: load.dataset}", "inputs: {dataset: load.datasets}")
    llm.script(chat=[fenced(broken), fenced(PIPELINE)])
    result = assistant(home, llm.url).write("train a random forest on iris", "pipeline")
    assert result.valid and result.repairs == 1
    repair = llm.requests()[1]["body"]["messages"]
    assert repair[-2]["role"] == "assistant" and "load.datasets" in repair[-2]["content"]
    assert repair[-1]["role"] == "user"
    assert (
        "pipeline/iris-forest > steps[1] (train) > inputs.dataset: dangling connection 'load.datasets'"
        in (repair[-1]["content"])
    )
    assert "fix: use one of its outputs: dataset" in repair[-1]["content"]


def test_gives_up_after_the_repairs_allowed_with_the_last_problems(home: Path, llm: FakeLLM) -> None:
    wrong = PIPELINE.replace("estimator: random_forest", "estimator: 42")
    llm.script(chat=[fenced(wrong)] * 3)
    result = assistant(home, llm.url, max_repairs=2).write("a forest", "pipeline")
    assert not result.valid and result.repairs == 2
    assert len(llm.requests()) == 3
    assert any("estimator" in p.where for p in result.problems), result.problems
    assert result.spec is None


def test_an_existing_name_gets_a_new_version_and_a_diff(home: Path, llm: FakeLLM) -> None:
    mine = PIPELINE.replace("name: iris-forest", "name: iris-classifier")
    llm.script(chat=[fenced(mine)])
    result = assistant(home, llm.url).write("rewrite the iris classifier as a forest", "pipeline")
    assert result.valid and result.ref == "pipeline/iris-classifier@1.1.0"
    assert "written as 1.1.0" in result.notes[0]
    assert result.diff.startswith(
        "--- a/pipeline/iris-classifier@1.0.0\n+++ b/pipeline/iris-classifier@1.1.0"
    )
    assert "-      uses: pipeline/tabular-classification@1.0.0" in result.diff, result.diff


def test_a_conversation_keeps_its_turns_redacted(
    home: Path, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mlops_nocode.ai")
    llm.script(chat=[fenced(PIPELINE), fenced(PIPELINE.replace("random_forest", "gradient_boosting"))])
    a = assistant(home, llm.url)
    a.redact = lambda text: text.replace("hunter2-secret", "***")
    store = FileStore(home)
    conv, _ = turn(
        a, store, "cli", "a forest on iris; my token is hunter2-secret", "pipeline", None, a.redact
    )
    conv2, second = turn(a, store, "cli", "use boosting instead", "pipeline", conv.id, a.redact)
    assert conv2.id == conv.id and second.valid
    later = llm.requests()[1]["body"]["messages"]
    assert [m["role"] for m in later] == ["system", "user", "assistant", "user"]
    assert "gradient_boosting" not in later[2]["content"] and "random_forest" in later[2]["content"]
    text = (home / "assistant" / "conversations" / f"{conv.id}.json").read_text()
    assert "hunter2-secret" not in text and "***" in text
    assert (home / "assistant" / "conversations" / f"{conv.id}.json").stat().st_mode & 0o777 == 0o600
    assert "my token is ***" in caplog.text and "hunter2-secret" not in caplog.text
    with pytest.raises(LookupError):
        store.get(conv.id, "someone-else")
    with pytest.raises(LookupError):
        store.get("../../etc/passwd", "cli")


META = """\
apiVersion: mlops-nocode/v1
kind: MetaPipeline
metadata: {name: two-showcases, version: 1.0.0}
spec:
  parameters: {type: object, properties: {seed: {type: integer, default: 7}}}
  steps:
    - {id: iris, uses: pipeline/iris-classifier@1.0.0, with: {estimator: knn, seed: "${{ params.seed }}"}}
    - {id: logs, uses: pipeline/log-anomaly-detection, with: {seed: "${{ params.seed }}"}}
  outputs: {model: iris.model}
"""


def test_a_meta_pipeline_of_catalogue_pipelines(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    llm.script(chat=[fenced(META.replace("estimator: knn", "estimator: knearest")), fenced(META)])
    result = assistant(home, llm.url).write("iris and log anomalies, one seed", "pipeline")
    assert result.valid and result.repairs == 1 and result.ref == "metapipeline/two-showcases@1.0.0"
    repair = llm.requests()[1]["body"]["messages"][-1]["content"]
    assert "with.estimator" in repair and "knearest" in repair, repair
