"""RAG answers: retrieve the passages nearest to a question, then either generate an answer from them
through a chat route (client.chat, asked to cite passages as [n]), or, with no chat route, answer
extractively: the best passages themselves, cited, saying that no model wrote the answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops_nocode.integrations.litellm.client import Usage, chat, preload
from mlops_nocode.integrations.litellm.routes import get_route
from mlops_nocode.library.rag_index import Passage, Retriever

SYSTEM_PROMPT = (
    "You answer questions about a set of documents using only the numbered passages given. "
    "Cite the passages you use as [1], [2] ... right after the statement they support. "
    "If the passages do not hold the answer, say that you do not know."
)
EXTRACTIVE_NOTE = "No chat model is configured, so this answer quotes the most relevant passages:"
_CITE = re.compile(r"\[(\d{1,3})\]")
MAX_QUESTION = 2000
RELATIVE_CUTOFF = 0.35  # of the best passage's score


@dataclass
class Reply:
    """What the chat endpoint answers."""

    answer: str
    citations: list[dict[str, Any]]
    mode: Literal["generated", "extractive"]
    usage: Usage = field(default_factory=Usage)

    def body(self) -> dict[str, Any]:
        return {"answer": self.answer, "citations": self.citations, "mode": self.mode}


def _label(p: Passage) -> str:
    return p.source if p.page is None else f"{p.source}, page {p.page}"


def prompt_messages(question: str, passages: list[Passage]) -> list[dict[str, Any]]:
    """The chat messages: the instructions, then the numbered passages and the question."""
    context = "\n\n".join(f"[{i}] ({_label(p)})\n{p.text}" for i, p in enumerate(passages, start=1))
    user = f"Passages:\n\n{context}\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def extractive(question: str, passages: list[Passage]) -> Reply:
    """The best passages as the answer, cited."""
    if not passages:
        return Reply(f"{EXTRACTIVE_NOTE} none of the documents matches this question.", [], "extractive")
    quotes = "\n\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, start=1))
    return Reply(f"{EXTRACTIVE_NOTE}\n\n{quotes}", [p.citation() for p in passages], "extractive")


def relevant(passages: list[Passage], share: float = RELATIVE_CUTOFF) -> list[Passage]:
    """The passages scoring at least `share` of the best one (a weak tail dilutes answers and citations)."""
    if not passages:
        return []
    best = max(p.score for p in passages)
    return [p for p in passages if p.score >= share * best]


class Answerer:
    """Answers questions from an index, with a chat route or extractively."""

    def __init__(
        self, retriever: Retriever, *, chat_model: str = "", api_key: str = "", top_k: int = 4,
        max_tokens: int = 512, timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.retriever = retriever
        self.chat_model = chat_model
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.secrets: dict[str, str] = {}
        if chat_model:
            route = get_route(None, chat_model, "chat")
            if route.api_key_secret and api_key:
                self.secrets = {route.api_key_secret: api_key}
            preload()  # before the service reports healthy, not on its first question

    def ask(self, question: str) -> Reply:
        """Answer `question` (ModelCallError when the chat route fails after its retries)."""
        passages = relevant(self.retriever.search(question, self.top_k))
        if not self.chat_model:
            return extractive(question, passages)
        if not passages:
            return Reply(
                "None of the documents matches this question, so I cannot answer it.", [], "generated"
            )
        got = chat(
            None, self.chat_model, prompt_messages(question, passages), secrets=self.secrets,
            max_tokens=self.max_tokens, timeout=self.timeout, temperature=0.0,
        )  # fmt: skip
        cited = sorted({int(n) for n in _CITE.findall(got.text) if 1 <= int(n) <= len(passages)})
        chosen = [passages[n - 1] for n in cited] or passages
        return Reply(got.text, [p.citation() for p in chosen], "generated", got.usage)
