"""The `litellm:` section of a playbook (`runtime: litellm`): a chat completion, a text completion or
embeddings through a model route (MLOPS_HOME/llm/routes.yaml, /api/v1/models). Strings may hold
`${{ params|inputs.X }}` expressions, checked at validate time and substituted by the executor."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Message(_Section):
    """One chat message; `content` is templated."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=200_000)


class LitellmRuntime(_Section):
    """`runtime: litellm` (first draft: the executor's helper refines it; see docs/STEPS.md)."""

    mode: Literal["chat", "completion", "embedding"] = "chat"
    model: str = Field(min_length=1, max_length=200, description="a model route name, or ${{ params.X }}")
    fallbacks: list[str] = Field(default_factory=list, max_length=10, description="routes tried after it")
    messages: list[Message] | None = Field(default=None, max_length=200)
    prompt: str | None = Field(default=None, max_length=200_000, description="completion prompt")
    input: str | None = Field(default=None, description="embedding: the texts, e.g. ${{ inputs.texts }}")
    temperature: float | str | None = None
    max_tokens: int | str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, description="constrain the answer to JSON")
    retries: int = Field(default=2, ge=0, le=10)
    timeout: float = Field(default=60.0, gt=0, le=3600)
    outputs: dict[str, str] = Field(default_factory=dict)
