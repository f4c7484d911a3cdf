"""The `litellm:` section of a playbook (`runtime: litellm`): a chat completion, a text completion or
embeddings through a model route (MLOPS_HOME/llm/routes.yaml, /api/v1/models). Strings may hold
`${{ params|inputs.X }}` expressions, checked at validate time (compiler/llm_checks.py) and substituted
by the executor (runtime/executors/litellm.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LlmOutput = Literal["text", "json", "embeddings", "metrics"]
"""What a declared output receives: the answer's `text`, the answer parsed as `json` (validated against
`json_schema` when one is given), the `embeddings` (one vector per text), or `metrics` (tokens, cost, and
the top-level numbers of a JSON answer, such as a judge's `score`)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Message(_Section):
    """One chat message; `content` is templated."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=200_000)


class LitellmRuntime(_Section):
    """`runtime: litellm`: one model call per attempt (more when an answer must be repaired); see
    docs/STEPS.md, "LiteLLM steps"."""

    mode: Literal["chat", "completion", "embedding"] = "chat"
    model: str = Field(min_length=1, max_length=200, description="a model route name, or ${{ params.X }}")
    fallbacks: list[str] = Field(
        default_factory=list, max_length=10, description="routes tried in order when `model` fails"
    )
    messages: list[Message] | None = Field(default=None, max_length=200, description="chat: the messages")
    prompt: str | None = Field(default=None, max_length=200_000, description="completion: the prompt")
    input: str | None = Field(
        default=None,
        max_length=200_000,
        description="embedding: the texts, e.g. ${{ inputs.texts }} (a list of strings, or one text)",
    )
    temperature: float | str | None = Field(default=None, description="0 to 2, or ${{ params.X }}")
    max_tokens: int | str | None = Field(default=None, description="at least 1, or ${{ params.X }}")
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="chat: the answer must be JSON conforming to this schema (an object at the root); "
        "asked natively when the route supports it, always validated",
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="more tries per route on 429, 5xx, timeouts; and repairs of an answer that is not "
        "the JSON asked for",
    )
    backoff: float = Field(default=0.5, ge=0, le=60, description="seconds before the first retry (doubles)")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds for one model call")
    outputs: dict[str, LlmOutput] = Field(
        default_factory=dict, description="declared output name -> text | json | embeddings | metrics"
    )
