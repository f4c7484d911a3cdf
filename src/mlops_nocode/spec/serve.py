"""The `serve:` section of a playbook (`runtime: serve`): a long-running HTTP service (an ASGI app
built by a factory) started by the step, health-checked, published as an `endpoint` output, and stopped
when the run ends unless it is kept (first draft: the serving helper refines it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeRuntime(BaseModel):
    """`runtime: serve`: `app` is `module:factory`; factory(inputs, params) returns an ASGI app."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    app: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:factory")
    health: str = Field(default="/health", pattern=r"^/[\w./-]*$")
    keep: bool | str = Field(
        default=False, description="keep serving after the run ends (or ${{ params.X }})"
    )
    ready_timeout: float = Field(default=60.0, gt=0, le=3600)
    outputs: dict[str, str] = Field(default_factory=dict)
