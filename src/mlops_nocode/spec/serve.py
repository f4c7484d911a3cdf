"""The `serve:` section of a playbook (`runtime: serve`): a long-running HTTP service started by the step,
health-checked, published as the step's `endpoint` output ({"url": ..., "service": NAME}), and stopped
when the run ends unless it is kept (docs/STEPS.md, "Serve steps").

The service is either an ASGI app (`app: module:factory`, factory(inputs, params) returns the app, run by
uvicorn on 127.0.0.1 and a free port) or a program that serves HTTP itself (`command`, e.g. vLLM): it
finds its port in the environment (MLOPS_SERVE_PORT, host MLOPS_SERVE_HOST=127.0.0.1).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_EXPR = re.compile(r"^\$\{\{\s*params\.[A-Za-z_][A-Za-z0-9_-]*\s*\}\}$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class ServeRoute(BaseModel):
    """Register the service as a model route while it runs (removed when it stops)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the route's name (or ${{ params.X }})", min_length=1, max_length=100)
    model: str = Field(
        description="the LiteLLM model string the route calls it with, e.g. openai/${{ params.model }} "
        "(an OpenAI-compatible server: api_base is the service's URL + /v1)",
        min_length=1,
        max_length=200,
    )
    kind: Literal["chat", "completion", "embedding"] = "chat"


class ServeRuntime(BaseModel):
    """`runtime: serve`: a service from `app` (module:factory) or `command` (argv)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    app: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:factory"
    )
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="a program serving HTTP itself (`python`: the platform's Python); ${{ params.X }}",
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment of the service")
    name: str | None = Field(
        default=None,
        description="the service's name (a DNS-1123 label, or ${{ params.X }}); default <step>-<run>",
    )
    health: str = Field(
        default="/health", pattern=r"^/[\w./-]*$", description="path answering 200 when ready"
    )
    keep: bool | str = Field(
        default=False, description="keep serving after the run ends (true/false, or ${{ params.X }})"
    )
    ready_timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds to wait for health")
    route: ServeRoute | None = None

    @field_validator("keep")
    @classmethod
    def _keep(cls, v: bool | str) -> bool | str:
        if isinstance(v, str) and not _EXPR.match(v):
            raise ValueError(f"keep {v[:60]!r} must be true, false or ${{{{ params.NAME }}}}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not (_LABEL.match(v) or _EXPR.match(v)):
            raise ValueError(
                f"name {v[:80]!r} must be a DNS-1123 label (lower-case letters, digits, '-') "
                "or ${{ params.NAME }}"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or key.startswith(("MLOPS_", "LD_")):
                raise ValueError(f"env name {key[:60]!r}: use letters, digits and '_' (not MLOPS_* or LD_*)")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> ServeRuntime:
        if (self.app is None) == (self.command is None):
            raise ValueError("give exactly one of `app` (module:factory) and `command` (argv)")
        return self
