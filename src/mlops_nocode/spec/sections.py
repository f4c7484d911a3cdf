"""The runtime sections of a playbook beyond `python` and `command`: `container`, `http`, `terraform` and
`ansible` (models.py holds those two). Every string of a section may hold `${{ params|inputs|secrets.X }}`
expressions; the compiler checks them (compiler/lint.py) and the executor of the runtime substitutes them
(runtime/executors/)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _output_path(v: str) -> str:
    from mlops_nocode.spec.models import output_path

    return output_path(v)


OutputPath = Annotated[str, AfterValidator(_output_path)]

_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF = re.compile(
    rf"(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    rf"|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?/)?{_NAME_PART}(?:/{_NAME_PART})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
"""An image reference, as the OCI distribution grammar (distribution/reference) writes it."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENGINE_ENV = re.compile(
    r"(PATH|HOME|USER|LOGNAME|SHELL|TMPDIR|LANG|LC_\w*|XDG_\w*|CONTAINERS_\w*|CONTAINER_\w*|DOCKER_\w*|"
    r"PODMAN_\w*|BUILDAH_\w*|STORAGE_\w*|REGISTRY_AUTH_FILE|LD_\w*|SSL_\w*|\w*_PROXY|\w*_proxy)"
)
"""Names of a container engine's own environment: a container env entry holding a secret cannot take one
(its value travels in the engine's environment, where it would change how the engine itself works)."""


class ContainerRuntime(_Section):
    """`runtime: container`: an image run by Docker or Podman (locally), a K3s Job, or a RunPod/Vast.ai pod.

    Inputs are mounted read-only under /mlops/inputs/<name>; the output folder is mounted at /mlops/out,
    and `outputs` name files in it, as for command steps.
    """

    image: str = Field(
        min_length=1,
        max_length=512,
        description="an image reference (registry/name:tag or name@sha256:...), without expressions",
    )
    command: list[str] | None = Field(default=None, description="the image's entrypoint, replaced")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = Field(default=None, description="an absolute path inside the container")
    ports: list[int] = Field(default_factory=list, description="published on 127.0.0.1 (needs a network)")
    outputs: dict[str, OutputPath] = Field(default_factory=dict)
    pull: Literal["never", "missing", "always"] = "missing"
    network: Literal["none", "bridge", "host"] = "none"

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if "${{" in v:
            raise ValueError(
                f"the image {v!r} holds an expression: name the image literally (its digest is pinned in "
                "the plan), and make a playbook per image"
            )
        if not IMAGE_REF.fullmatch(v):
            raise ValueError(
                f"{v!r} is not an image reference: write [registry[:port]/]name[:tag][@sha256:<64 hex>], "
                "lower-case name (e.g. docker.io/library/busybox:1.36)"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"env name {name!r}: use letters, digits and '_', not starting with a digit")
        return v

    @field_validator("workdir")
    @classmethod
    def _workdir(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("/") or "\0" in v or ":" in v):
            raise ValueError(f"workdir {v!r}: give an absolute path inside the container (e.g. /mlops/out)")
        return v

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        for port in v:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not between 1 and 65535")
        return v

    @model_validator(mode="after")
    def _ports_need_network(self) -> ContainerRuntime:
        if self.ports and self.network == "none":
            raise ValueError("ports are published only with a network: set network: bridge (or drop ports)")
        return self


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"})


class HttpRuntime(_Section):
    """`runtime: http`: one HTTP request; its response body becomes the step's output `output`.

    Strings hold `${{ params|inputs|secrets.X }}`. In `url`, a value is percent-encoded (it cannot add a
    path segment, a query or change the host) except an expression that starts the URL (the base URL).
    A string of `json` that is one expression takes the value with its JSON type. `body_file:
    ${{ inputs.X }}` uploads a file input (file inputs are never sent as their path).
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    url: str = Field(min_length=1, max_length=8192, description="http(s) URL; see the class docstring")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict, description="query parameters, encoded")
    json_body: Any = Field(default=None, alias="json", description="a JSON body")
    form: dict[str, str] | None = Field(default=None, description="a form body (urlencoded)")
    body: str | None = Field(default=None, description="a text body, sent as is (set Content-Type)")
    body_file: str | None = Field(default=None, description="${{ inputs.X }}: the file input sent as body")
    expect: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=list, max_length=100, description="accepted status codes (default: 200-299)"
    )
    output: str | None = Field(default=None, description="the output that receives the response body")
    status_output: str | None = Field(default=None, description="an output that receives the status code")
    timeout: float = Field(default=30.0, gt=0, le=3600, description="seconds per try (connect to last byte)")
    retries: int = Field(default=3, ge=0, le=20, description="tries again on 5xx, 429, connection errors")
    backoff: float = Field(default=1.0, ge=0, le=600, description="seconds before the first retry, doubled")
    follow_redirects: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        lead = v.lstrip()
        if lead.startswith("${{"):
            return v  # a base URL from a value: checked when the step runs
        scheme = lead.split(":", 1)[0].lower() if ":" in lead else ""
        if scheme not in ("http", "https") or not lead.lower().startswith(f"{scheme}://"):
            raise ValueError(
                f"{v[:60]!r} is not an http:// or https:// URL: write the full URL "
                "(https://example.org/api/items), or start it with an expression giving the base URL"
            )
        return v

    @field_validator("headers")
    @classmethod
    def _header_names(cls, v: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name in v:
            if not _TOKEN.fullmatch(name):
                raise ValueError(
                    f"header name {name[:60]!r} is not a valid HTTP header name: use letters, digits and "
                    "- (e.g. X-Api-Key); names cannot hold expressions"
                )
            if name.lower() in _HOP_HEADERS:
                raise ValueError(f"header {name!r} is set by the HTTP client: remove it")
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is given twice (names ignore case): keep one")
            seen.add(name.lower())
        return v

    @model_validator(mode="after")
    def _one_body(self) -> HttpRuntime:
        given = [k for k in ("json", "form", "body", "body_file") if self._body_of(k) is not None]
        if len(given) > 1:
            raise ValueError(f"http: {' and '.join(given)} are given: a request has one body, keep one")
        if given and self.method in ("GET", "HEAD", "OPTIONS"):
            raise ValueError(f"http: a {self.method} request has no body ({given[0]}): use POST or PUT")
        if self.output is not None and self.output == self.status_output:
            raise ValueError("http: output and status_output name the same output: use two outputs")
        return self

    def _body_of(self, key: str) -> Any:
        return self.json_body if key == "json" else getattr(self, key)


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
