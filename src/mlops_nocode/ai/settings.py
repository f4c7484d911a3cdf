"""The assistant's settings (pydantic-settings, read from the environment; nothing happens at import).

ASSISTANT_MODEL          the model route the assistant calls (a route of MLOPS_HOME/llm/routes.yaml)
ASSISTANT_MAX_REPAIRS    how many times located problems go back to the model before it gives up
ASSISTANT_MAX_ANSWER_BYTES  a longer answer is refused without being parsed
ASSISTANT_CONTEXT_BYTES  the most bytes of catalogue signatures given to the model
ASSISTANT_TIMEOUT        seconds one model call may take
ASSISTANT_TRY_TIMEOUT    seconds the test run of a written playbook may take
ASSISTANT_HISTORY_TURNS  earlier turns of the conversation sent again with a new prompt
ASSISTANT_PER_MINUTE     assistant requests one API key may make per minute on the gateway (0: no limit)
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AssistantSettings(BaseSettings):
    """What the assistant reads from the environment (prefix ASSISTANT_)."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="ignore", case_sensitive=False)

    model: str = Field(default="assistant", description="the model route the assistant calls")
    max_repairs: int = Field(default=3, ge=0, le=10)
    max_answer_bytes: int = Field(default=64 * 1024, ge=1024, le=4 * 1024 * 1024)
    context_bytes: int = Field(default=24 * 1024, ge=2048, le=1024 * 1024)
    timeout: float = Field(default=120.0, gt=0, le=3600)
    try_timeout: float = Field(default=300.0, gt=0, le=3600)
    history_turns: int = Field(default=6, ge=0, le=50)
    per_minute: int = Field(default=10, ge=0, le=10_000)
    temperature: float = Field(default=0.0, ge=0, le=2)
