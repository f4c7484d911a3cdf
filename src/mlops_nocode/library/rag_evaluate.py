"""RAG evaluation: ask the chat endpoint each question of a question set (shipped with the example:
questions, the sources that hold the answer, key terms) and score the answers: retrieval hit rate @k
(an expected source among the citations), citation correctness (share of citations from an expected
source), key-term coverage (share of key terms in the answer) and, with `judge_model` naming a chat
route, an LLM judge's 0-1 score of each answer against the expected sources' passages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from mlops_nocode.integrations.litellm.client import ModelCallError, chat
from mlops_nocode.integrations.litellm.routes import get_route
from mlops_nocode.library.reporting import report_metrics
from mlops_nocode.runtime.context import StepContext

SHIPPED_QUESTIONS = Path(__file__).parent / "rag_data" / "questions.json"
MAX_QUESTIONS = 500
JUDGE_PROMPT = (
    "You grade an answer to a question about some documents. Reply with a JSON object "
    '{"score": S, "reason": "..."} where S is 1 for a correct, supported answer, 0.5 for a partly '
    "correct one and 0 for a wrong or unsupported one."
)
_JSON = re.compile(r"\{.*\}", re.S)


def load_questions(questions: str) -> list[dict[str, Any]]:
    """The question set: a JSON list of {"question", "sources": [...], "terms": [...]} (default: shipped)."""
    path = Path(questions) if questions else SHIPPED_QUESTIONS
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not data or len(data) > MAX_QUESTIONS:
        raise ValueError(f"{path}: expected a JSON list of 1 to {MAX_QUESTIONS} questions")
    out = []
    for n, q in enumerate(data):
        if not isinstance(q, dict) or not isinstance(q.get("question"), str) or not q["question"].strip():
            raise ValueError(f"{path}: item {n} needs a non-empty string `question`")
        sources = q.get("sources", [])
        terms = q.get("terms", [])
        if not all(isinstance(s, str) for s in [*sources, *terms]):
            raise ValueError(f"{path}: item {n}: `sources` and `terms` must be lists of strings")
        out.append({"question": q["question"], "sources": list(sources), "terms": list(terms)})
    return out


def endpoint_url(endpoint: Any) -> str:
    """The base URL of an `endpoint` value ({"url": ...}), given as the value or as its JSON file."""
    value = endpoint
    if isinstance(endpoint, str) and not endpoint.startswith(("http://", "https://")):
        value = json.loads(Path(endpoint).read_text(encoding="utf-8"))
    if isinstance(value, Mapping):
        value = value.get("url")
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"the endpoint input holds no http(s) URL: {str(endpoint)[:200]!r}")
    return value.rstrip("/")


def score_answer(q: Mapping[str, Any], body: Mapping[str, Any], k: int) -> dict[str, Any]:
    """Hit @k, citation correctness and key-term coverage of one answer."""
    expected = set(q["sources"])
    cited = [str(c.get("source", "")) for c in body.get("citations", [])[:k] if isinstance(c, Mapping)]
    answer = str(body.get("answer", "")).lower()
    terms = q["terms"]
    return {
        "question": q["question"],
        "mode": body.get("mode"),
        "cited": cited,
        "hit": float(bool(expected & set(cited))) if expected else 1.0,
        "citation_correctness": (sum(s in expected for s in cited) / len(cited)) if cited else 0.0,
        "term_coverage": (sum(t.lower() in answer for t in terms) / len(terms)) if terms else 1.0,
    }


def judge(route: str, secrets: Mapping[str, str], q: Mapping[str, Any], body: Mapping[str, Any]) -> float:
    """An LLM judge's score of one answer (0-1); ValueError when the judge's reply is not a score."""
    passages = "\n".join(
        f"- {c.get('text', '')}" for c in body.get("citations", []) if isinstance(c, Mapping)
    )
    user = (
        f"Question: {q['question']}\nExpected key terms: {', '.join(q['terms'])}\n"
        f"Cited passages:\n{passages}\n\nAnswer to grade:\n{body.get('answer', '')}"
    )
    messages = [{"role": "system", "content": JUDGE_PROMPT}, {"role": "user", "content": user}]
    got = chat(None, route, messages, secrets=secrets, temperature=0.0, max_tokens=200)
    m = _JSON.search(got.text)
    score = json.loads(m.group(0)).get("score") if m else None
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 1:
        raise ValueError(f"the judge's reply holds no score between 0 and 1: {got.text[:200]!r}")
    return float(score)


def evaluate(
    *,
    endpoint: Any,
    questions: str = "",
    top_k: int = 4,
    judge_model: str = "",
    api_key: str = "",
    timeout: float = 120.0,
    ctx: StepContext,
) -> dict[str, Any]:
    """Ask every question at `endpoint`/chat and report the scores as metrics."""
    url = endpoint_url(endpoint)
    qs = load_questions(questions)
    secrets: dict[str, str] = {}
    if judge_model:
        route = get_route(None, judge_model, "chat")
        secrets = {route.api_key_secret: api_key} if route.api_key_secret and api_key else {}
    rows = []
    judged: list[float] = []
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        for q in qs:
            resp = client.post(f"{url}/chat", json={"question": q["question"]})
            if resp.status_code != 200:
                raise ValueError(
                    f"{url}/chat answered {resp.status_code} to {q['question']!r}: {resp.text[:300]}"
                )
            body = resp.json()
            row = score_answer(q, body, top_k)
            if judge_model:
                try:
                    row["judge"] = judge(judge_model, secrets, q, body)
                    judged.append(row["judge"])
                except (ValueError, ModelCallError) as exc:
                    ctx.log.warning("judge: %s", exc)
            rows.append(row)
            ctx.log.info(
                "%s -> %s, cited %s", q["question"], row["mode"], ", ".join(row["cited"]) or "nothing"
            )
    n = len(rows)
    numbers: dict[str, float] = {
        "questions": n,
        "k": top_k,
        "hit_rate_at_k": sum(r["hit"] for r in rows) / n,
        "citation_correctness": sum(r["citation_correctness"] for r in rows) / n,
        "key_term_coverage": sum(r["term_coverage"] for r in rows) / n,
        "generated_share": sum(r["mode"] == "generated" for r in rows) / n,
    }
    if judged:
        numbers["judge_score"] = sum(judged) / len(judged)
    metrics = report_metrics(ctx, numbers)
    return {"metrics": metrics, "report": {"metrics": metrics, "answers": rows}}
