"""The RAG chat service (`runtime: serve`, playbook rag-chat): `app(inputs, params)` builds the ASGI app.

POST /chat {"question": "..."} -> {"answer", "citations": [{source, page, score, text}], "mode":
"generated" | "extractive"}; GET /health. Bad requests get a located 422; a failing model a 502 naming
the route (never a 500 with a traceback)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlops_nocode.integrations.litellm.client import ModelCallError
from mlops_nocode.library.rag_answer import MAX_QUESTION, Answerer
from mlops_nocode.library.rag_index import Retriever


class Question(BaseModel):
    """The body of POST /chat."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION, description="what to ask the documents")


def _path(value: Any) -> str:
    """An input given as a path (a folder artifact) or as {"path": ...}."""
    if isinstance(value, Mapping):
        value = value.get("path")
    if not isinstance(value, str | Path) or not Path(value).is_dir():
        raise ValueError(f"the index input must be a folder made by rag-index, got {value!r}")
    return str(value)


def build_app(answerer: Answerer) -> FastAPI:
    """The service around `answerer`."""
    api = FastAPI(title="RAG chat", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "mode": "generated" if answerer.chat_model else "extractive"}

    @api.post("/chat")
    async def ask(body: Question) -> Any:
        try:
            reply = await run_in_threadpool(answerer.ask, body.question)
        except ModelCallError as exc:
            detail = f"chat route {answerer.chat_model!r} failed: {exc}"
            for value in answerer.secrets.values():  # a provider's error never echoes the key back
                detail = detail.replace(value, "***")
            return JSONResponse(status_code=502, content={"detail": detail, "status": exc.status})
        return reply.body()

    return api


def app(inputs: Mapping[str, Any], params: Mapping[str, Any]) -> FastAPI:
    """The factory the serve runtime calls: `inputs.index` is the rag-index folder; params `chat_model`
    (a chat route, empty: extractive answers), `api_key` (its key), `embedding_key` (the key of the index's
    embedding route, to embed questions; default: `api_key`), `top_k`."""
    embedding_key = params.get("embedding_key") or params.get("api_key") or ""
    retriever = Retriever(_path(inputs.get("index")), str(embedding_key))
    answerer = Answerer(
        retriever,
        chat_model=str(params.get("chat_model") or ""),
        api_key=str(params.get("api_key") or ""),
        top_k=int(params.get("top_k") or 4),
    )
    return build_app(answerer)


def app_from_env() -> FastAPI:
    """The app built from MLOPS_RAG_INDEX and MLOPS_RAG_PARAMS (JSON): for `uvicorn --factory`."""
    import os

    return app(
        {"index": os.environ["MLOPS_RAG_INDEX"]}, json.loads(os.environ.get("MLOPS_RAG_PARAMS") or "{}")
    )
