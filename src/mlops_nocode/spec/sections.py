"""The runtime sections of a playbook beyond `python` and `command`: `container`, `http`, `terraform` and
`ansible` (models.py holds those two). Every string of a section may hold `${{ params|inputs|secrets.X }}`
expressions; the compiler checks them (compiler/lint.py) and the executor of the runtime substitutes them
(runtime/executors/)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_nocode.spec.limits import playbook_code_limit
from mlops_nocode.spec.llm import LitellmRuntime
from mlops_nocode.spec.serve import ServeRuntime


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


_TF_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
_STATE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_GIT_MODULE = re.compile(
    r"git::(?P<url>(https|ssh|file)://[^\s?]+?)(//(?P<dir>[^?\s]+))?(\?ref=(?P<ref>[^\s&]+))?"
)
_GIT_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")


def _terraform_name(v: str) -> str:
    if not _TF_NAME.fullmatch(v):
        raise ValueError(
            f"{v!r} is not a terraform identifier: use letters, digits, '_' and '-', starting with a letter"
        )
    return v


def _state_name(v: str) -> str:
    if not _STATE_NAME.fullmatch(v):
        raise ValueError(f"state {v!r} must be `run` or a DNS-1123 label (lower-case letters, digits, '-')")
    return v


def _relative_dir(v: str, what: str) -> str:
    parts = v.replace("\\", "/").split("/")
    if v.startswith("/") or ".." in parts or "\0" in v or "${{" in v:
        raise ValueError(f"{what} {v!r} must be a relative folder inside the playbook's folder (no '..')")
    return v


def git_module_parts(v: str) -> tuple[str, str, str] | None:
    """(URL, subfolder or "", ref or "") of a `git::` module source; None for a folder source."""
    m = _GIT_MODULE.fullmatch(v) if v.startswith("git::") else None
    return (m["url"], m["dir"] or "", m["ref"] or "") if m else None


_TF_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.(tf|tf\.json|tftpl)$")


def _terraform_file(v: str) -> str:
    """The name of an inline module file: flat, and a Terraform file (.tf, .tf.json, .tftpl)."""
    if not _TF_FILE.fullmatch(v):
        raise ValueError(
            f"terraform.files: {v[:80]!r} is not a module file name: write a plain name ending in .tf, "
            ".tf.json or .tftpl (no folders)"
        )
    return v


def _terraform_module(v: str) -> str:
    """A module source: a folder relative to the spec, or `git::(https|ssh|file)://...[//dir][?ref=x]`."""
    if v.startswith("git::"):
        m = _GIT_MODULE.fullmatch(v)
        if m is None:
            raise ValueError(
                f"module {v!r} is not a git source: write git::https://HOST/REPO.git//SUBDIR?ref=TAG "
                "(https, ssh or file URLs; SUBDIR and ref are optional)"
            )
        if m["dir"]:
            _relative_dir(m["dir"], "the module's subfolder")
        if m["ref"] and (not _GIT_REF.fullmatch(m["ref"]) or ".." in m["ref"]):
            raise ValueError(f"ref {m['ref']!r} is not a branch, tag or commit name")
        return v
    if "://" in v or v.startswith("git@"):
        raise ValueError(f"module {v!r}: remote modules are written git::https://... (git sources only)")
    return _relative_dir(v, "module")


class ContainerRuntime(_Section):
    """`runtime: container`: an image run by Docker or Podman (locally) or as a Kubernetes Job (k3s targets).

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
    """`runtime: terraform`: a module applied with variables; its outputs become the step's outputs.

    `module` is a folder relative to the playbook's spec file, or `git::URL[//SUBDIR][?ref=REF]`
    (https, ssh, or file URLs when TERRAFORM_GIT_FILE_URLS allows them). `variables` go to terraform as
    JSON (a `.tfvars.json` file); a variable whose whole value is `${{ secrets.X }}` goes only through
    the `TF_VAR_<name>` environment variable. `state: run` keeps one state per run and step; any other
    name keeps one state shared by every run and step naming it (re-applied, locked while in use).
    """

    module: Annotated[str, AfterValidator(_terraform_module)] | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="a folder relative to the spec, or git::URL//dir?ref= (or give the files inline)",
    )
    files: dict[Annotated[str, AfterValidator(_terraform_file)], str] = Field(
        default_factory=dict,
        max_length=64,
        description="the module itself, inline: file name (main.tf, outputs.tf.json...) -> content; "
        "stored with the playbook, so it runs from any catalogue (instead of module)",
    )
    variables: dict[Annotated[str, AfterValidator(_terraform_name)], Any] = Field(default_factory=dict)
    outputs: dict[str, Annotated[str, AfterValidator(_terraform_name)]] = Field(
        default_factory=dict, description="step output -> terraform output name (default: the same name)"
    )
    ephemeral: bool = Field(default=False, description="destroy when the run ends, whatever its end")
    state: Annotated[str, AfterValidator(_state_name)] = Field(
        default="run",
        max_length=63,
        description="`run`: one state per run and step; a name: one state shared by runs naming it",
    )

    @model_validator(mode="after")
    def _ephemeral_state(self) -> TerraformRuntime:
        if (self.module is None) == (not self.files):
            raise ValueError(
                "a terraform section names its module exactly once: `module` (a folder or a git:: source) "
                "or `files` (the module's files inline), not both and not neither"
            )
        size = sum(len(k) + len(v.encode("utf-8", "surrogatepass")) for k, v in self.files.items())
        if size > playbook_code_limit():
            raise ValueError(
                f"terraform.files holds {size} bytes, more than MAX_PLAYBOOK_CODE_BYTES "
                f"({playbook_code_limit()}): use a module folder or a git:: source for a large module"
            )
        if self.ephemeral and self.state != "run":
            raise ValueError(
                f"ephemeral: true destroys the run's own infrastructure, and state {self.state!r} is shared "
                "by runs: use state: run, or drop ephemeral"
            )
        return self


class AnsibleRuntime(_Section):
    """`runtime: ansible`: a playbook run with ansible-playbook against an inventory built from an input
    (the hosts of an `infra` value, shape in docs/STEPS.md) or localhost (local connection).

    Every parameter is an extra var of the same name; `extra_vars` adds or overrides vars (strings may
    hold `${{ params|inputs|secrets.X }}`). Values arrive as data, never evaluated as Jinja templates.
    """

    playbook: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="a playbook file relative to the spec's folder (listed in spec.files), or "
        "git::URL//PATH?ref=REF",
    )
    play: list[dict[str, Any]] | None = Field(
        default=None,
        min_length=1,
        description="the plays themselves, inline (versioned with the spec; no file to ship)",
    )
    inventory: str | None = Field(
        default=None, description="an input (infra or json) holding the hosts; none: localhost"
    )
    extra_vars: dict[str, Any] = Field(default_factory=dict)
    limit: str | None = Field(default=None, max_length=1024, description="ansible-playbook --limit")
    tags: list[str] = Field(default_factory=list)
    skip_tags: list[str] = Field(default_factory=list)
    check: bool = Field(default=False, description="run with --check (nothing changed)")
    outputs: dict[str, OutputPath] = Field(
        default_factory=dict,
        description="file outputs: output name -> path in the output folder ({{ mlops_output_dir }})",
    )

    @field_validator("playbook")
    @classmethod
    def _playbook(cls, v: str | None) -> str | None:
        from mlops_nocode.spec.ansible import check_playbook

        return None if v is None else check_playbook(v)

    @model_validator(mode="after")
    def _one_source(self) -> AnsibleRuntime:
        if (self.playbook is None) == (self.play is None):
            raise ValueError(
                "give exactly one of ansible.playbook (a file beside the spec, or git::URL//PATH?ref=REF) "
                "and ansible.play (the plays inline)"
            )
        return self

    @field_validator("extra_vars")
    @classmethod
    def _var_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        from mlops_nocode.spec.ansible import check_var_name

        for name in v:
            check_var_name(name, "extra_vars")
        return v

    @field_validator("tags", "skip_tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        from mlops_nocode.spec.ansible import check_tag

        return [check_tag(t) for t in v]

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: str | None) -> str | None:
        from mlops_nocode.spec.ansible import check_limit

        return None if v is None else check_limit(v)


SECTIONS: dict[str, type[BaseModel]] = {
    "container": ContainerRuntime,
    "http": HttpRuntime,
    "terraform": TerraformRuntime,
    "ansible": AnsibleRuntime,
    "litellm": LitellmRuntime,
    "serve": ServeRuntime,
}
"""Runtime name -> the model of its section (the key of the section in a playbook's spec)."""
