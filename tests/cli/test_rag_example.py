"""The RAG chatbot example end to end through the real `mlops` command on the shipped documents: with no
model configured (TF-IDF, extractive cited answers, metrics, the chat service stopped when the run ends:
no orphan), with routes of the scripted OpenAI-compatible backend standing in for the models (embeddings
and generated answers whose prompts carried the retrieved passages), and kept serving on request."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from mlops_nocode.runtime import services as sv
from tests.conftest import CliResult, none_left
from tests.fakellm import FakeLLM

Mlops = Callable[..., CliResult]


def run_example(mlops: Mlops, tmp_path: Path, *sets: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = tmp_path / "events.jsonl"
    args = [a for s in sets for a in ("--set", s)]
    r = mlops("run", "pipeline/rag-chatbot", "--json", "--events", str(events), *args)
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded"
    return summary, [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def answers_refused(url: str) -> bool:
    try:
        httpx.post(url + "/chat", json={"question": "still there?"}, timeout=2)
    except httpx.HTTPError:
        return True
    return False


def test_runs_with_no_model_extractive_and_stops_its_service(
    mlops: Mlops, home: Path, tmp_path: Path
) -> None:
    summary, events = run_example(mlops, tmp_path)
    out = summary["outputs"]
    assert out["embedder"] == {"method": "tfidf", "route": None, "dims": out["embedder"]["dims"]}
    metrics = out["metrics"]
    assert metrics["questions"] == 6 and metrics["generated_share"] == 0
    assert metrics["hit_rate_at_k"] >= 0.8 and metrics["key_term_coverage"] >= 0.8
    assert metrics["citation_correctness"] >= 0.7
    assert {a["mode"] for a in out["report"]["answers"]} == {"extractive"}
    recorded = {
        e["data"]["name"] for e in events if e.get("type") == "metric" and e.get("step") == "evaluate"
    }
    assert {"hit_rate_at_k", "citation_correctness", "key_term_coverage"} <= recorded
    assert out["ingest_report"]["skipped"] == 0 and out["ingest_report"]["documents"] == 5
    service = out["endpoint"]["service"]
    assert none_left(f"--service {service}")  # the run ended: no service process is left
    assert answers_refused(out["endpoint"]["url"])
    svc = sv.load(home, service)
    assert svc is None or not sv.alive(svc)
    # again: the index comes from the cache, but a service is never a cached result: it starts anew
    again, _ = run_example(mlops, tmp_path)
    cached = {sid: s["cached"] for sid, s in again["steps"].items()}
    assert cached == {
        "ingest": True,
        "chunk": True,
        "embed": True,
        "index": True,
        "chat": False,
        "evaluate": False,
    }
    assert again["outputs"]["metrics"] == metrics
    assert none_left(f"--service {again['outputs']['endpoint']['service']}")


def test_runs_with_model_routes_generated_answers(
    mlops: Mlops, home: Path, tmp_path: Path, fake_llm: FakeLLM
) -> None:
    save_route(home, ModelRoute(name="chat", model="openai/fake", api_base=fake_llm.url))
    save_route(home, ModelRoute(name="emb", model="openai/embed", kind="embedding", api_base=fake_llm.url))
    judge = FakeLLM()  # its own backend, so that its scripted grades are not taken by the chat service
    try:
        save_route(home, ModelRoute(name="judge", model="openai/judge", api_base=judge.url))
        judge.script(chat=[{"json": {"score": 1}}] * 3 + [{"json": {"score": 0.5}}] * 3)
        sets = ("embedding_model=emb", "chat_model=chat", "judge_model=judge")
        summary, events = run_example(mlops, tmp_path, *sets)
        graded = [q["body"]["messages"][1]["content"] for q in judge.requests()]
    finally:
        judge.stop()
    out = summary["outputs"]
    assert out["metrics"]["judge_score"] == 0.75
    assert len(graded) == 6 and all("Answer to grade:\necho: " in g for g in graded)
    assert out["embedder"] == {"method": "litellm", "route": "emb", "dims": 64}
    assert out["metrics"]["generated_share"] == 1 and out["metrics"]["hit_rate_at_k"] >= 0.8
    assert {a["mode"] for a in out["report"]["answers"]} == {"generated"}
    embed_metrics = {
        e["data"]["name"] for e in events if e.get("type") == "metric" and e.get("step") == "embed"
    }
    assert "embedding_prompt_tokens" in embed_metrics
    seen = fake_llm.requests()
    chats = [q["body"]["messages"] for q in seen if q["path"].endswith("/chat/completions")]
    assert len(chats) == 6  # one per question of the shipped set
    asked = {m[1]["content"].rsplit("Question: ", 1)[1]: m[1]["content"] for m in chats}
    prompt = asked["Which command starts the LiteLLM proxy with a master key?"]
    assert "(serving.pdf, page 2)" in prompt and "mlops llm up" in prompt  # the retrieved passage
    assert none_left(f"--service {out['endpoint']['service']}")


def test_keep_serving_leaves_the_chat_endpoint_until_stopped(
    mlops: Mlops, home: Path, tmp_path: Path
) -> None:
    summary, _ = run_example(mlops, tmp_path, "keep_serving=true")
    endpoint = summary["outputs"]["endpoint"]
    r = httpx.post(endpoint["url"] + "/chat", json={"question": "What is a playbook?"}, timeout=30)
    assert r.status_code == 200 and r.json()["citations"][0]["source"] == "overview.md"
    stopped = mlops("serve", "stop", endpoint["service"])
    assert stopped.code == 0, stopped
    assert none_left(f"--service {endpoint['service']}")
    assert answers_refused(endpoint["url"])


KEY = "sk-rag-embed-s3cr3t-4242"
KEYED = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: rag-keyed, version: 1.0.0}
spec:
  steps:
    - {id: ingest, uses: playbook/rag-ingest, with: {docs_dir: "DOCS", max_file_bytes: 20000}}
    - {id: chunk, uses: playbook/rag-chunk, inputs: {records: ingest.records}}
    - id: embed
      uses: playbook/rag-embed
      with: {embedding_model: emb, api_key: "${{ secrets.EMB_KEY }}"}
      inputs: {chunks: chunk.chunks}
  outputs: {report: ingest.report, embedder: embed.embedder}
"""


def test_hostile_folder_and_a_keyed_route_through_a_run(mlops: Mlops, home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.md").write_text("PRIVATE outside the folder")
    docs = tmp_path.with_name(tmp_path.name + "-docs")  # tests let steps write in tmp_path: not there
    docs.mkdir()
    (docs / "good.md").write_text("# Routes\n\nModel routes name the models.\x1b[2J\x07")
    (docs / "fake.pdf").write_text("<?php system($_GET['c']); ?>")
    (docs / "huge.txt").write_bytes(b"a" * 30_000)
    (docs / "escape.md").symlink_to(outside / "private.md")
    spec = tmp_path / "keyed.yaml"
    spec.write_text(KEYED.replace("DOCS", str(docs)))
    backend = FakeLLM(api_key=KEY)
    try:
        route = ModelRoute(
            name="emb", model="openai/embed", kind="embedding", api_base=backend.url, api_key_secret="EMB_KEY"
        )
        save_route(home, route)
        confined = mlops("run", str(spec), "--json", env={"EMB_KEY": KEY})
        assert confined.code != 0 and "STEP_SANDBOX_READ" in confined.stderr + confined.stdout
        no_key = mlops("run", str(spec), "--json", env={"STEP_SANDBOX_READ": str(docs)})
        assert no_key.code != 0 and "secret 'EMB_KEY' is not set" in no_key.stderr + no_key.stdout
        r = mlops(
            "run", str(spec), "--json", "--verbose", env={"EMB_KEY": KEY, "STEP_SANDBOX_READ": str(docs)}
        )
        assert r.code == 0, r
        out = r.json()["outputs"]
        why = {s["source"]: s["why"] for s in out["report"]["skipped_files"]}
        assert set(why) == {"fake.pdf", "huge.txt", "escape.md"}
        assert out["report"]["documents"] == 1 and out["embedder"]["method"] == "litellm"
        assert backend.requests() and all(q["authorization"] for q in backend.requests())
        assert KEY not in r.stdout + r.stderr
        for f in (home / "runs").rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                assert KEY.encode() not in data, f
                assert b"PRIVATE" not in data, f
    finally:
        backend.stop()


def test_a_literal_key_is_refused_at_validate_time(mlops: Mlops, tmp_path: Path) -> None:
    spec = tmp_path / "literal.yaml"
    spec.write_text(KEYED.replace("DOCS", "/nowhere").replace("${{ secrets.EMB_KEY }}", "sk-literal-key-123"))
    r = mlops("validate", str(spec))
    assert r.code != 0
    assert "secret parameter 'api_key' is given as a literal value" in r.stdout + r.stderr
    assert "sk-literal-key-123" not in r.stdout + r.stderr
