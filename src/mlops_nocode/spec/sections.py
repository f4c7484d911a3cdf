"""The runtime sections of a playbook beyond `python` and `command`: `container`, `http`, `terraform` and
`ansible` (models.py holds those two). Every string of a section may hold `${{ params|inputs|secrets.X }}`
expressions; the compiler checks them (compiler/lint.py) and the executor of the runtime substitutes them
(runtime/executors/)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _output_path(v: str) -> str:
    from mlops_nocode.spec.models import output_path

    return output_path(v)


OutputPath = Annotated[str, AfterValidator(_output_path)]


class ContainerRuntime(_Section):
    """`runtime: container`: an image run by Docker or Podman (locally), a K3s Job, or a RunPod/Vast.ai pod.

    Inputs are mounted read-only under /mlops/inputs/<name>; the output folder is mounted at /mlops/out,
    and `outputs` name files in it, as for command steps.
    """

    image: str = Field(min_length=1, max_length=512)
    command: list[str] | None = Field(default=None, description="the image's entrypoint, replaced")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    ports: list[int] = Field(default_factory=list)
    outputs: dict[str, OutputPath] = Field(default_factory=dict)
    pull: Literal["never", "missing", "always"] = "missing"
    network: Literal["none", "bridge", "host"] = "none"


class HttpRuntime(_Section):
    """`runtime: http`: one HTTP request; its response body becomes the step's output `output`."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    expect: list[int] = Field(default_factory=list, description="accepted status codes (default: 2xx)")
    output: str | None = Field(default=None, description="the output that receives the response body")
    timeout: float = Field(default=30.0, gt=0, le=3600)
    retries: int = Field(default=3, ge=0, le=20)
    follow_redirects: bool = False


class TerraformRuntime(_Section):
    """`runtime: terraform`: a module applied with variables; its outputs become the step's outputs."""

    module: str = Field(
        min_length=1, max_length=2048, description="a folder relative to the spec, or git::URL?ref="
    )
    variables: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict, description="step output -> terraform output name")
    ephemeral: bool = Field(default=False, description="destroy when the run ends")


class AnsibleRuntime(_Section):
    """`runtime: ansible`: a playbook run with ansible-playbook against an inventory built from inputs."""

    playbook: str = Field(min_length=1, max_length=2048)
    inventory: str | None = Field(default=None, description="an input of type infra, or none for localhost")
    extra_vars: dict[str, Any] = Field(default_factory=dict)
    limit: str | None = None
    tags: list[str] = Field(default_factory=list)


SECTIONS: dict[str, type[_Section]] = {
    "container": ContainerRuntime,
    "http": HttpRuntime,
    "terraform": TerraformRuntime,
    "ansible": AnsibleRuntime,
}
"""Runtime name -> the model of its section (the key of the section in a playbook's spec)."""
