"""`--playbook`: the assistant writes a playbook with its code, which is run once in a scratch
MLOPS_HOME on its samples before it is offered; a failing run goes back to the model as a repair."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ai.support import PLAYBOOK, assistant, fenced
from tests.conftest import none_left
from tests.fakellm import FakeLLM


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


def test_a_written_playbook_is_tried_and_repaired_before_it_is_offered(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    llm.script(chat=[fenced(PLAYBOOK), fenced(PLAYBOOK.replace("FIRST", "words[0]"))])
    result = assistant(home, llm.url).write("a playbook that counts the words of a text", "playbook")
    assert result.valid and result.repairs == 1, result.problems
    assert result.tried == {"status": "succeeded", "outputs": {"count": 3, "first": "hello"}}
    assert result.ref == "playbook/word-count@0.1.0"
    assert "x-samples" not in result.yaml and "code: |" in result.yaml
    repair = llm.requests()[1]["body"]["messages"][-1]["content"]
    assert "answer > spec.python.code: the test run on the samples failed" in repair
    assert "NameError: name 'FIRST' is not defined" in repair
    assert str(Path("/tmp")) + "/mlops-assist-try-" not in repair  # the scratch folder is not shown
    assert not (home / "runs").exists(), "the test run used a scratch MLOPS_HOME, not the user's"


def test_a_test_run_that_hangs_is_killed_whole(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    hang = PLAYBOOK.replace('return {"count": len(words), "first": FIRST}', "import time; time.sleep(3600)")
    llm.script(chat=[fenced(hang)])
    result = assistant(home, llm.url, max_repairs=0, try_timeout=5).write("count words", "playbook")
    assert not result.valid
    assert result.problems[0].what == "the test run took longer than 5s and was stopped"
    assert none_left("mlops-assist-try-"), "no process of the test run may outlive it"


def test_samples_that_do_not_fit_the_ports_go_back_located(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    wrong = PLAYBOOK.replace("x-samples: {text: {value: Hello big World}}", "x-samples: {txt: {value: hi}}")
    llm.script(chat=[fenced(wrong)])
    result = assistant(home, llm.url, max_repairs=0).write("count words", "playbook")
    wheres = {p.where for p in result.problems}
    assert {"answer > x-samples.txt", "answer > x-samples.text"} <= wheres, result.problems


def test_a_written_playbook_asks_for_no_secrets(home: Path, llm: FakeLLM) -> None:
    llm.reset()
    greedy = PLAYBOOK.replace(
        "  runtime: python\n", "  runtime: python\n  secrets: [AWS_SECRET_ACCESS_KEY]\n"
    )
    llm.script(chat=[fenced(greedy)])
    result = assistant(home, llm.url, max_repairs=0).write("count words", "playbook")
    assert result.problems[0].where == "answer > spec.secrets"


def test_the_test_run_cannot_read_the_callers_home_under_a_granted_folder(
    tmp_path: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's MLOPS_HOME (keys, database) stays out of reach of the written code even when it lies
    under a folder steps may read (here PYTHONPATH)."""
    granted = tmp_path / "granted"
    home = granted / "home"
    home.mkdir(parents=True)
    stolen = home / "secret_key"
    stolen.write_text("the-gateway-secret-key-value")
    monkeypatch.setenv("MLOPS_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(granted), os.environ.get("PYTHONPATH", "")]))
    llm.reset()
    thief = PLAYBOOK.replace('"first": FIRST', f'"first": open({str(stolen)!r}).read()')
    llm.script(chat=[fenced(thief)])
    result = assistant(home, llm.url, max_repairs=0).write("count words", "playbook")
    assert not result.valid and "the-gateway-secret-key-value" not in repr(result)
    assert "PermissionError" in result.problems[0].what + result.problems[0].fix, result.problems
