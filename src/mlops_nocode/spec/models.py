"""Pydantic models of the spec: Playbook, Pipeline and MetaPipeline documents (apiVersion mlops-nocode/v1)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_nocode.spec.limits import playbook_code_limit
from mlops_nocode.spec.llm import LitellmRuntime
from mlops_nocode.spec.notify import MAX_TARGETS, NotifyTarget
from mlops_nocode.spec.refs import KIND_OF_DOC, Ref, RefError, check_name, check_version, valid_name
from mlops_nocode.spec.sections import (
    SECTIONS,
    AnsibleRuntime,
    ContainerRuntime,
    HttpRuntime,
    TerraformRuntime,
)
from mlops_nocode.spec.serve import ServeRuntime
from mlops_nocode.spec.values import (
    CONNECTION_RE,
    ENTRYPOINT_RE,
    ENV_NAME_RE,
    FUNCTION_RE,
    MEMORY_RE,
    SpecValueError,
    check_names,
    check_timeout,
    relative_path,
)

API_VERSION = "mlops-nocode/v1"
CUSTOM_RESOURCE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,63}$")
RESERVED_RESOURCES = frozenset({"CPU", "GPU", "memory", "object_store_memory", "cpu", "gpu"})

PortType = Literal[
    "dataset", "model", "metrics", "text", "json", "file", "directory", "endpoint", "infra", "any"
]
ARTIFACT_TYPES: frozenset[str] = frozenset({"dataset", "model", "file", "directory"})
Runtime = Literal["python", "command", "container", "terraform", "ansible", "http", "litellm", "serve"]
ProviderName = Literal["local", "k3s", "exoscale", "vastai", "runpod", "ray", "auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(_Strict):
    """Identity of a document: a DNS-1123 name, a semver version, free text and labels."""

    name: Annotated[str, AfterValidator(valid_name)]
    version: str = "0.1.0"
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        problem = check_version(v)
        if problem:
            raise ValueError(problem)
        return v


class Port(_Strict):
    """A typed input or output of a playbook or pipeline."""

    type: PortType = "any"
    description: str = ""
    optional: bool = False


class Resources(_Strict):
    """What one step needs: CPU cores, memory (e.g. 512Mi, 2Gi), GPUs (how many, how much memory each,
    which model), and custom resources by name (what a Ray cluster's nodes declare, e.g. `{"tpu": 1}`)."""

    cpu: float = Field(default=1.0, gt=0, le=100_000, allow_inf_nan=False)
    memory: str = "512Mi"
    gpu: int = Field(default=0, ge=0, le=10_000)
    gpu_memory: str | None = Field(default=None, description="memory per GPU, e.g. 24Gi (needs gpu >= 1)")
    gpu_type: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
        description="GPU model, matched case-insensitively as a prefix of the offer's (A100, H100-80GB)",
    )
    custom: dict[str, float] = Field(
        default_factory=dict, description="custom resources by name (Ray), e.g. {special: 1}"
    )

    @field_validator("memory", "gpu_memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and (not MEMORY_RE.fullmatch(v) or len(v) > 24):
            raise ValueError(
                f"invalid memory {v[:40]!r}: use a number with Ki, Mi, Gi or Ti (e.g. 512Mi, 2Gi)"
            )
        return v

    @field_validator("custom")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) > 32:
            raise ValueError("at most 32 custom resources")
        for name, amount in v.items():
            if not CUSTOM_RESOURCE_RE.fullmatch(name) or name in RESERVED_RESOURCES:
                raise ValueError(
                    f"invalid custom resource name {name[:40]!r}: letters, digits, '_', '-', '.', '/' "
                    f"(at most 64), not one of {', '.join(sorted(RESERVED_RESOURCES))}"
                )
            if not 0 < amount <= 1e6 or amount != amount:
                raise ValueError(f"custom resource {name!r} needs a positive amount (got {amount})")
        return v

    @model_validator(mode="after")
    def _gpu_details(self) -> Resources:
        if (self.gpu_memory or self.gpu_type) and self.gpu < 1:
            raise ValueError("gpu_memory and gpu_type need gpu: 1 or more")
        return self

    def to_plan(self) -> dict[str, Any]:
        """The plan's form: cpu, memory, gpu always; the others only when set (plans stay as they were)."""
        out: dict[str, Any] = {"cpu": self.cpu, "memory": self.memory, "gpu": self.gpu}
        if self.gpu_memory is not None:
            out["gpu_memory"] = self.gpu_memory
        if self.gpu_type is not None:
            out["gpu_type"] = self.gpu_type
        if self.custom:
            out["custom"] = dict(self.custom)
        return out


class PythonRuntime(_Strict):
    """`runtime: python`: a function run in its own process, named one of two ways.

    - `entrypoint: "package.module:function"`: a function of an installed (importable) module;
    - `code: "<Python source>"` with `entrypoint: "main"` (the default): the playbook carries its own
      source (written in the web editor, stored in the catalogue with the playbook); `entrypoint` names a
      top-level function of that source. Its size is bounded by MAX_PLAYBOOK_CODE_BYTES.
    """

    entrypoint: str = ""
    code: str | None = Field(
        default=None,
        description="Python source of the step (instead of an importable module); entrypoint then names "
        "a top-level function of it (default main)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_function(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("code") is not None and not data.get("entrypoint"):
            return {**data, "entrypoint": "main"}
        return data

    @model_validator(mode="after")
    def _entrypoint(self) -> PythonRuntime:
        if self.code is None:
            if not ENTRYPOINT_RE.fullmatch(self.entrypoint):
                raise SpecValueError(
                    f"invalid entrypoint {self.entrypoint[:80]!r}",
                    "write 'package.module:function' (an importable function), or give the source as "
                    "python.code with entrypoint naming a function of it",
                )
            return self
        size = len(self.code.encode("utf-8", "surrogatepass"))
        limit = playbook_code_limit()
        if size > limit:
            raise SpecValueError(
                f"python.code is {size} bytes, more than MAX_PLAYBOOK_CODE_BYTES ({limit})",
                "make the step smaller: put large code in an installed package and name it in "
                "python.entrypoint, or data in an input",
            )
        if not FUNCTION_RE.fullmatch(self.entrypoint):
            raise SpecValueError(
                f"invalid entrypoint {self.entrypoint[:80]!r} for python.code",
                "with python.code, name a top-level function of the code (e.g. main), without a module; "
                "or drop python.code to name an importable 'package.module:function'",
            )
        return self


def output_path(v: str) -> str:
    """A command output's path: relative, inside the step's output folder (no `..`, not absolute)."""
    parts = v.replace("\\", "/").split("/")
    if not v.strip() or "\0" in v or v.startswith("/") or ".." in parts:
        raise ValueError(
            f"output path {v!r} is not inside the step's output folder: write a relative path without "
            "'..' and not absolute (e.g. model.bin or results/metrics.json)"
        )
    return v


class CommandRuntime(_Strict):
    """`runtime: command`: a shell-free argv with `${{ params|inputs|outputs.X }}` substituted.

    Each output is a path relative to the step's output directory, or a file the command writes its
    JSON value to (for json, text and metrics outputs).
    """

    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Annotated[str, AfterValidator(output_path)]] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        check_names("environment variable", v, ENV_NAME_RE)
        return v


class PlaybookSpec(_Strict):
    """A reusable step: runtime, typed ports, parameter schema, resources, retries, timeout, secrets."""

    runtime: Runtime
    python: PythonRuntime | None = None
    command: CommandRuntime | None = None
    container: ContainerRuntime | None = None
    http: HttpRuntime | None = None
    terraform: TerraformRuntime | None = None
    ansible: AnsibleRuntime | None = None
    litellm: LitellmRuntime | None = None
    serve: ServeRuntime | None = None
    inputs: dict[str, Port] = Field(default_factory=dict)
    outputs: dict[str, Port] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(default=0, ge=0, le=20)
    timeout: str | float | None = None
    cache: bool = True
    secrets: list[str] = Field(default_factory=list)
    files: list[Annotated[str, AfterValidator(relative_path)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Files the playbook ships with: paths or glob patterns relative to the folder of its "
        "spec file (a folder brings every file under it). Part of the step's cache key; the step reads "
        "them under ${{ spec.dir }}.",
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | float | None) -> str | float | None:
        return check_timeout(v)

    @field_validator("inputs", "outputs")
    @classmethod
    def _port_names(cls, v: dict[str, Port]) -> dict[str, Port]:
        check_names("port", v)
        return v

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, v: list[str]) -> list[str]:
        check_names("secret", v)
        return v

    @model_validator(mode="after")
    def _runtime_section(self) -> PlaybookSpec:
        if self.runtime == "python" and self.python is None:
            raise ValueError(
                "runtime 'python' needs a 'python: {entrypoint: module:function}' or "
                "'python: {code: ...}' section"
            )
        if self.runtime == "command" and self.command is None:
            raise ValueError("runtime 'command' needs a 'command: {argv: [...]}' section")
        if self.runtime in SECTIONS and getattr(self, self.runtime) is None:
            raise ValueError(f"runtime {self.runtime!r} needs a '{self.runtime}:' section (docs/STEPS.md)")
        others = [k for k in ("python", "command", *SECTIONS) if k != self.runtime and getattr(self, k)]
        if others:
            raise ValueError(
                f"runtime {self.runtime!r} does not use the section(s) {others}: remove them, or change "
                "the runtime"
            )
        section = self.section
        mapped = getattr(section, "outputs", None) if section is not None else None
        undeclared = sorted(set(mapped or ()) - set(self.outputs))
        if undeclared:
            raise ValueError(
                f"{self.runtime}.outputs names {undeclared}, not declared under outputs "
                f"(declared: {sorted(self.outputs)}): declare them or fix the names"
            )
        return self

    @property
    def section(self) -> BaseModel | None:
        """The section of the playbook's runtime (`command:`, `container:` ...), None for none."""
        section: BaseModel | None = getattr(self, self.runtime, None)
        return section


class Target(_Strict):
    """Where steps run; `options` are provider-specific (region, instance type, kubeconfig...)."""

    provider: ProviderName = "local"
    options: dict[str, Any] = Field(default_factory=dict)


class Step(_Strict):
    """One node of a pipeline: `uses` a playbook or another (meta)pipeline."""

    id: str
    uses: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    inputs: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    target: Target | None = None
    retries: int | None = Field(default=None, ge=0, le=20)
    timeout: str | float | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        problem = check_name(v)
        if problem:
            raise ValueError(problem.replace("name", "step id", 1))
        return v

    @field_validator("uses")
    @classmethod
    def _uses(cls, v: str) -> str:
        try:
            Ref.parse(v)
        except RefError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: dict[str, str]) -> dict[str, str]:
        for name, source in v.items():
            if not isinstance(source, str) or not CONNECTION_RE.fullmatch(source):
                raise SpecValueError(
                    f"input {name[:60]!r}: invalid connection {str(source)[:60]!r}",
                    "write STEP_ID.OUTPUT (e.g. load.dataset) "
                    "or inputs.NAME for an input of the enclosing pipeline",
                )
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | float | None) -> str | float | None:
        return check_timeout(v)

    @property
    def ref(self) -> Ref:
        return Ref.parse(self.uses)


class PipelineSpec(_Strict):
    """A DAG of steps with its own parameters, inputs and outputs."""

    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    target: Target | None = None
    inputs: dict[str, Port] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    outputs: dict[str, str] = Field(default_factory=dict)
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        description="who hears of a run's end (a launch's own `notify` list replaces this one)",
    )

    @field_validator("inputs")
    @classmethod
    def _port_names(cls, v: dict[str, Port]) -> dict[str, Port]:
        check_names("input", v)
        return v

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, v: dict[str, str]) -> dict[str, str]:
        check_names("output", v)
        for name, source in v.items():
            if not CONNECTION_RE.fullmatch(source):
                raise SpecValueError(
                    f"output {name!r}: invalid connection {source[:60]!r}",
                    "write STEP_ID.OUTPUT (e.g. train.model) or inputs.NAME to pass an input through",
                )
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> PipelineSpec:
        seen: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.id in seen:
                raise ValueError(f"steps[{i}]: duplicate step id {step.id!r}: step ids must be unique")
            seen.add(step.id)
        return self


class _Document(_Strict):
    api_version: Literal["mlops-nocode/v1"] = Field(alias="apiVersion")
    metadata: Metadata

    @property
    def ref(self) -> Ref:
        return Ref(KIND_OF_DOC[self.kind], self.metadata.name, self.metadata.version)  # type: ignore[attr-defined]


class Playbook(_Document):
    kind: Literal["Playbook"]
    spec: PlaybookSpec


class Pipeline(_Document):
    kind: Literal["Pipeline"]
    spec: PipelineSpec


class MetaPipeline(_Document):
    kind: Literal["MetaPipeline"]
    spec: PipelineSpec


Document = Annotated[Playbook | Pipeline | MetaPipeline, Field(discriminator="kind")]
Graph = Pipeline | MetaPipeline
