"""/api/v1/assist: the AI assistant writes a pipeline or a playbook from the catalogue (validated, and
for a playbook run once on samples in a scratch home); a conversation belongs to the API key that
started it. Saving is a separate, explicit call (`POST /assist/{conversation}/save`)."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi import Path as PathParam
from pydantic import ConfigDict, Field

from mlops_nocode.ai.conversation import ConversationNotFound
from mlops_nocode.ai.settings import AssistantSettings
from mlops_nocode.api import examples as E
from mlops_nocode.api.auth import Principal
from mlops_nocode.api.routes.catalogue import _catalogues, _committer, _message
from mlops_nocode.api.schemas import ErrorOut, Strict
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.assistant_store import DbConversationStore

router = APIRouter(prefix="/assist", tags=["assistant"])
ID_PATTERN = r"^[0-9a-f]{16}$"
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such conversation of this API key", "model": ErrorOut},
    429: {"description": "more than ASSISTANT_PER_MINUTE requests in a minute", "model": ErrorOut},
    502: {"description": "the model failed to answer (after retries and fallbacks)", "model": ErrorOut},
    409: {"description": "no model route for the assistant, or LiteLLM not installed", "model": ErrorOut},
}


_YAML = (
    "apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata:\n  name: iris-knn\n  version: 1.0.0\nspec:\n"
    "  steps:\n  - id: load\n    uses: playbook/sklearn-dataset@1.0.0\n    with:\n      name: iris\n"
    "  - id: train\n    uses: playbook/sklearn-train\n    with:\n      estimator: knn\n    inputs:\n"
    "      dataset: load.dataset\n"
)
RESULT: dict[str, Any] = {
    "conversation": "1fa6c178a065eabb",
    "kind": "pipeline",
    "valid": True,
    "ref": "pipeline/iris-knn@1.0.0",
    "spec": {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "iris-knn", "version": "1.0.0"},
        "spec": {
            "steps": [
                {"id": "load", "uses": "playbook/sklearn-dataset@1.0.0", "with": {"name": "iris"}},
                {"id": "train", "uses": "playbook/sklearn-train", "with": {"estimator": "knn"},
                 "inputs": {"dataset": "load.dataset"}},
            ]
        },
    },
    "yaml": _YAML,
    "problems": [],
    "warnings": [],
    "diff": "",
    "repairs": 1,
    "notes": [],
    "tried": None,
}  # fmt: skip
CONVERSATION: dict[str, Any] = {
    "conversation": "1fa6c178a065eabb",
    "kind": "pipeline",
    "messages": [
        {"role": "user", "content": "classify iris with k nearest neighbours"},
        {"role": "assistant", "content": _YAML},
    ],
    "result": {k: v for k, v in RESULT.items() if k != "conversation"},
    "created_at": 1764516000.0,
    "updated_at": 1764516002.5,
}
SAVED: dict[str, Any] = {
    "status": "saved",
    "conversation": "1fa6c178a065eabb",
    "saved": [
        {"ref": "pipeline/iris-knn@1.0.0", "repo": "local", "commit": "3a59066d8aefdcb1569cb1da41e7ba09670",
         "changed": True}
    ],
}  # fmt: skip


class AssistRequest(Strict):
    """What the user wants, in words; `kind` what to write; `conversation` to continue one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prompt": "classify iris with k nearest neighbours", "kind": "pipeline"}]
        },
    )

    prompt: str = Field(min_length=1, max_length=8000)
    kind: Literal["pipeline", "playbook"] = "pipeline"
    conversation: str | None = Field(default=None, pattern=ID_PATTERN)


class SaveAssisted(Strict):
    """Optional commit message and repository for the confirmed save."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"message": "iris with knn"}]})

    message: str | None = Field(default=None, max_length=2000)
    repo: str | None = Field(default=None, max_length=100)


class _Limiter:
    """At most `per_minute` calls per API key in any 60 s (in this gateway process)."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, subject: str, per_minute: int) -> None:
        if per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(subject, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= per_minute:
                wait = int(seen[0] + 60 - now) + 1
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    f"more than {per_minute} assistant requests in a minute (ASSISTANT_PER_MINUTE): "
                    f"retry in {wait}s",
                    headers={"Retry-After": str(wait)},
                )
            seen.append(now)


LIMITER = _Limiter()


def _not_found(conversation: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no conversation {conversation} of this API key")


@router.post("", responses={**ERRORS, **E.json_example(RESULT)})
def assist(body: AssistRequest, request: Request, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Write a spec: returns it (`spec`, `yaml`), `valid`, the located `problems` of the last answer when
    invalid, `diff` against the catalogue's latest version of that name, `repairs` made, and the
    `conversation` to continue or save. Nothing is saved."""
    from mlops_nocode.ai.model import route_model
    from mlops_nocode.ai.session import build, turn
    from mlops_nocode.integrations.litellm.client import LitellmMissing, ModelCallError
    from mlops_nocode.integrations.litellm.routes import RouteError
    from mlops_nocode.runtime.redaction import redactor_for

    principal: Principal = request.state.principal
    settings = AssistantSettings()
    LIMITER.check(principal.subject, settings.per_minute)
    home = gw.settings.home
    try:
        model = route_model(home, settings, gw.secrets.values, os.environ)
        cats = _catalogues()
        assistant = build(cats.resolver(), model, settings, cats)
        assistant.redact = redactor_for(gw.secrets.values(i.name for i in gw.secrets.infos()).values()).text
        store = DbConversationStore(gw.db)
        conv, result = turn(
            assistant, store, principal.subject, body.prompt, body.kind, body.conversation, assistant.redact
        )
    except ConversationNotFound:
        raise _not_found(str(body.conversation)) from None
    except RouteError as e:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the assistant has no model: {e} (set ASSISTANT_MODEL to a chat route)"
        ) from None
    except LitellmMissing as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except ModelCallError as e:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"the model did not answer: {e}") from None
    return {"conversation": conv.id, **result.to_json()}


@router.get("/{conversation}", responses={**ERRORS, **E.json_example(CONVERSATION)})
def show(
    request: Request, conversation: str = PathParam(pattern=ID_PATTERN), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """One of this API key's conversations: its turns (redacted) and its last result."""
    principal: Principal = request.state.principal
    try:
        conv = DbConversationStore(gw.db).get(conversation, principal.subject)
    except ConversationNotFound:
        raise _not_found(conversation) from None
    return {
        "conversation": conv.id,
        "kind": conv.kind,
        "messages": conv.messages,
        "result": conv.result,
        "created_at": conv.created_at,
        "updated_at": conv.updated_at,
    }


@router.post(
    "/{conversation}/save",
    status_code=status.HTTP_201_CREATED,
    responses={**ERRORS, **E.json_example(SAVED, 201)},
)
def save(
    request: Request,
    conversation: str = PathParam(pattern=ID_PATTERN),
    body: SaveAssisted | None = Body(
        default=None, openapi_examples={"message": {"value": {"message": "iris with knn"}}}
    ),
    gw: Gateway = Depends(gateway),
) -> dict[str, Any]:
    """Save the conversation's last valid result into the catalogue (one commit, authored by the API key
    that asks, as `POST /api/v1/catalogue` does): the explicit confirmation."""
    from mlops_nocode.ai.session import to_save

    principal: Principal = request.state.principal
    try:
        conv = DbConversationStore(gw.db).get(conversation, principal.subject)
    except ConversationNotFound:
        raise _not_found(conversation) from None
    doc, text = to_save(conv)
    ident, trailer = _committer(request, gw)
    asked = next((m["content"] for m in reversed(conv.messages) if m["role"] == "user"), "")
    default = f"assistant: {' '.join(asked.split())[:72]}"
    message = _message((body.message if body else None) or default, [trailer, f"Conversation: {conv.id}"])
    saved = _catalogues().save([(doc, text)], repo=body.repo if body else None, author=ident, message=message)
    return {"status": "saved", "conversation": conv.id, "saved": [s.to_json() for s in saved]}
