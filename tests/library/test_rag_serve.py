"""The RAG chat app as a real service: uvicorn in its own process on loopback, over an index built by the
steps; extractive with no chat route, generated through a route of the scripted OpenAI-compatible backend
(tests/fakellm.py, standing in for a model), with embeddings through a route too; hostile requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_nocode.integrations.litellm.routes import ROUTES_ENV, ModelRoute
from mlops_nocode.library import rag_chunk, rag_embed, rag_index, rag_ingest
from mlops_nocode.runtime.context import StepContext
from tests.fakellm import FakeLLM, free_port


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


def routes_json(llm: FakeLLM) -> str:
    routes = [
        ModelRoute(name="chat", model="openai/fake", api_base=llm.url),
        ModelRoute(name="emb", model="openai/fake-embed", kind="embedding", api_base=llm.url),
    ]
    return json.dumps([r.model_dump(exclude_none=True) for r in routes])


def build(folder: Path, embedding_model: str) -> str:
    n = iter(range(10))

    def ctx() -> StepContext:
        out = folder / f"s{next(n)}"
        out.mkdir(parents=True)
        return StepContext("s", "r", out)

    records = rag_ingest.ingest(ctx=ctx())["records"]
    chunks = rag_chunk.chunk(records=records, ctx=ctx())["chunks"]
    emb = rag_embed.embed_chunks(chunks=chunks, embedding_model=embedding_model, ctx=ctx())
    return str(rag_index.build_index(embeddings=emb["embeddings"], ctx=ctx())["index"])


def serve(index: str, params: dict[str, Any], routes: str, log: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "MLOPS_RAG_INDEX": index,
        "MLOPS_RAG_PARAMS": json.dumps(params),
        ROUTES_ENV: routes,
    }
    argv = [sys.executable, "-m", "uvicorn", "--factory", "mlops_nocode.library.rag_serve:app_from_env"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def extractive(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("extractive")
    yield from serve(build(folder, ""), {}, routes_json(llm), folder / "log")


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("generated")
    routes = routes_json(llm)
    monkeypatch_module.setenv(ROUTES_ENV, routes)  # the embed step's process gets them from the Runner
    index = build(folder, "emb")
    assert json.loads((Path(index) / "embedder.json").read_text())["method"] == "litellm"
    yield from serve(index, {"chat_model": "chat", "top_k": 3}, routes, folder / "log")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_extractive_answers_cite_their_passages(extractive: str) -> None:
    assert httpx.get(extractive + "/health").json()["mode"] == "extractive"
    r = httpx.post(extractive + "/chat", json={"question": "Which command starts the LiteLLM proxy?"})
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "extractive"
    assert body["answer"].startswith("No chat model is configured")
    top = body["citations"][0]
    assert (top["source"], top["page"]) == ("serving.pdf", 2)
    assert "mlops llm up" in top["text"] and 0 < top["score"] <= 1


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b'{"question": ""}',
        json.dumps({"question": "x" * 2001}).encode(),
        b'{"question": "ok", "extra": 1}',
        b'{"question": ["a"]}',
        b"not json",
        b'{"question": "\\u0000\\"; rm -rf / #"}' + b" " * 10,
    ],
)
def test_bad_requests_are_located_422s(extractive: str, payload: bytes) -> None:
    r = httpx.post(extractive + "/chat", content=payload, headers={"content-type": "application/json"})
    if payload.startswith(b'{"question": "\\u0000'):  # a strange but valid question is just answered
        assert r.status_code == 200 and r.json()["mode"] == "extractive"
        return
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "body"
    assert "Traceback" not in r.text


def test_generated_answers_carry_the_passages_in_the_prompt(generated: str, llm: FakeLLM) -> None:
    llm.reset()
    llm.script(chat=[{"content": "Stop it with `mlops serve stop NAME` [1]."}])
    question = "How do I stop a model serving service?"
    r = httpx.post(generated + "/chat", json={"question": question}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "generated"
    assert body["answer"] == "Stop it with `mlops serve stop NAME` [1]."
    assert [c["source"] for c in body["citations"]] == ["serving.pdf"]  # only what the answer cites
    seen = llm.requests()
    embeds = [q for q in seen if q["path"].endswith("/embeddings")]
    assert embeds and embeds[-1]["body"]["input"] == [question]
    chats = [q for q in seen if q["path"].endswith("/chat/completions")]
    assert len(chats) == 1
    messages = chats[0]["body"]["messages"]
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
    assert "[1] (serving.pdf, page 1)" in messages[1]["content"]
    assert "mlops serve stop" in messages[1]["content"]
    assert messages[1]["content"].endswith(f"Question: {question}")


def test_a_failing_chat_route_is_a_502_naming_it(generated: str, llm: FakeLLM) -> None:
    llm.reset()
    llm.script(chat=[{"status": 500, "error": "model exploded"}] * 3)
    r = httpx.post(generated + "/chat", json={"question": "What is a playbook?"}, timeout=60)
    assert r.status_code == 502
    detail = r.json()["detail"]
    assert "chat route 'chat' failed" in detail and "model exploded" in detail
    assert "Traceback" not in r.text


def test_evaluation_with_a_judge_keeps_only_real_scores(
    extractive: str, llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_nocode.library.rag_evaluate import evaluate

    monkeypatch.setenv(ROUTES_ENV, routes_json(llm))
    questions = tmp_path / "q.json"
    asked = ["What is a playbook?", "Which providers can a run be placed on?", "Where are secrets?"]
    questions.write_text(json.dumps([{"question": q, "sources": [], "terms": []} for q in asked] * 2))
    llm.reset()
    llm.script(
        chat=[
            {"json": {"score": 1, "reason": "right"}},
            {"content": 'Sure! {"score": 0.5} because'},
            {"content": "I refuse to grade"},  # no score: left out
            {"json": {"score": 7}},  # out of range: left out
            {"json": {"score": True}},  # not a number: left out
            {"status": 400, "error": "bad request"},  # not retried, left out
        ]
    )
    endpoint = tmp_path / "endpoint.json"
    endpoint.write_text(json.dumps({"url": extractive, "service": "x"}))
    ctx = StepContext("evaluate", "r", tmp_path / "out")
    out = evaluate(endpoint=str(endpoint), questions=str(questions), judge_model="chat", ctx=ctx)
    assert out["metrics"]["judge_score"] == 0.75 and out["metrics"]["questions"] == 6
    assert [a.get("judge") for a in out["report"]["answers"]] == [1.0, 0.5, None, None, None, None]
    judged = [q["body"]["messages"][1]["content"] for q in llm.requests()]
    assert judged[0].startswith("Question: What is a playbook?") and "Answer to grade:" in judged[0]
