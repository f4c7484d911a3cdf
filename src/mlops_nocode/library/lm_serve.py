"""The `serve-causal-lm` service (`runtime: serve`): a Hugging Face causal LM folder (the merged model of
merge-adapter, or any local model folder) behind a small OpenAI-compatible API, so the serve step can
register it as a model route and LiteLLM (llm-chat, the assistant, the proxy) calls it like any other.

GET /health, GET /v1/models, POST /v1/chat/completions and POST /v1/completions (greedy or sampled
generation on this machine's CPU, or its GPU when one is visible). The prompt of a chat is the last user
message in the instruction template the model was fine-tuned with. Bad requests answer a located 422;
generation runs one request at a time (a model is not thread-safe)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlops_nocode.library.lm_common import PROMPT, load_model, load_tokenizer, need, pick_device, set_threads

MAX_TEXT = 20_000
MAX_NEW = 512


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(max_length=MAX_TEXT)


class ChatIn(BaseModel):
    """The body of POST /v1/chat/completions (the fields this service uses; others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(default="", max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=100)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW)
    temperature: float | None = Field(default=None, ge=0, le=2)


class CompletionIn(BaseModel):
    """The body of POST /v1/completions."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(default="", max_length=200)
    prompt: str = Field(max_length=MAX_TEXT)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW)
    temperature: float | None = Field(default=None, ge=0, le=2)


def _path(value: Any) -> Path:
    if isinstance(value, Mapping):
        value = value.get("path")
    if not isinstance(value, str | Path) or not (Path(value) / "config.json").is_file():
        raise ValueError(f"the model input must be a model folder (with config.json), got {value!r}")
    return Path(value)


class Generator:
    """The model and tokenizer, generating one request at a time."""

    def __init__(self, folder: Path, device: str, default_tokens: int) -> None:
        self.device = pick_device(device)
        self.model = load_model(folder, self.device)
        self.model.eval()
        self.tok = load_tokenizer(folder)
        self.default_tokens = default_tokens
        self.lock = threading.Lock()

    def __call__(
        self, prompt: str, max_tokens: int | None, temperature: float | None
    ) -> tuple[str, int, int]:
        """The text generated after `prompt`, and the prompt's and the text's token counts."""
        torch = need("torch")
        ids = self.tok(prompt, return_tensors="pt")["input_ids"].to(self.device)
        sample = bool(temperature)
        kwargs: dict[str, Any] = {"do_sample": sample}
        if sample:
            kwargs["temperature"] = temperature
        with self.lock, torch.no_grad():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens or self.default_tokens,
                pad_token_id=self.tok.pad_token_id,
                eos_token_id=self.tok.eos_token_id,
                **kwargs,
            )
        new = out[0, ids.shape[1] :]
        return (
            str(self.tok.decode(new, skip_special_tokens=True)).strip(),
            int(ids.shape[1]),
            int(new.shape[0]),
        )


def chat_prompt(messages: list[Message]) -> str:
    """The instruction-template prompt for the last user message."""
    users = [m.content for m in messages if m.role == "user"]
    return PROMPT.format(instruction=(users[-1] if users else messages[-1].content).strip(), input="")


def app(inputs: dict[str, Any], params: dict[str, Any]) -> FastAPI:
    """The ASGI app of serve-causal-lm: the model of input `model`, named `served_name` in /v1/models."""
    set_threads(int(params.get("cpu_threads") or 1))
    gen = Generator(
        _path(inputs["model"]), str(params.get("device") or "auto"), int(params.get("max_tokens") or 32)
    )
    name = str(params.get("served_name") or "fine-tuned")
    api = FastAPI(title=f"causal LM {name}", docs_url=None, redoc_url=None, openapi_url=None)

    def usage(p: int, c: int) -> dict[str, int]:
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": name, "device": gen.device}

    @api.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "mlops-nocode"}]}

    @api.post("/v1/chat/completions")
    async def chat(body: ChatIn) -> dict[str, Any]:
        text, p, c = await run_in_threadpool(
            gen, chat_prompt(body.messages), body.max_tokens, body.temperature
        )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": usage(p, c),
        }

    @api.post("/v1/completions")
    async def complete(body: CompletionIn) -> dict[str, Any]:
        text, p, c = await run_in_threadpool(gen, body.prompt, body.max_tokens, body.temperature)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:12]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
            "usage": usage(p, c),
        }

    return api
