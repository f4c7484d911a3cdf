"""Request and response bodies. Requests forbid unknown fields; inline specs have a depth limit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core.core_schema import CoreSchema

from mlops_nocode.api import examples as E
from mlops_nocode.runtime.secrets import MAX_VALUE_BYTES, MIN_REDACTED, value_problem
from mlops_nocode.spec.limits import spec_depth_limit
from mlops_nocode.spec.notify import MAX_RECIPIENTS, MAX_TARGETS, NotifyTarget, NotifyType, check_address

MAX_DEPTH = spec_depth_limit() + 1  # MAX_SPEC_DEPTH for one document; +1 for a list of them
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def depth(value: Any, limit: int) -> int:
    """Nesting depth of JSON-like data, stopping as soon as it passes `limit`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


class Strict(BaseModel):
    """Unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class TargetIn(Strict):
    """Where to run: a provider (local, k3s, exoscale, vastai, runpod or auto) and its options (for
    auto: constraints such as gpu_type, max_price_per_hour, regions; see docs/SPEC.md)."""

    model_config = E.config("TargetIn")

    provider: str = Field(default="local", max_length=64, examples=["local"])
    options: dict[str, Any] = Field(default_factory=dict)


def _provider_name(value: Any) -> Any:
    return {"provider": value} if isinstance(value, str) else value


class _OrProviderName:
    """Documents that a target may also be a provider name (its errors stay located at the target's
    fields, where a union type would add its member's name to them)."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        name = {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["local"]}
        return {"anyOf": [handler(schema), name]}


# the blueprint's deploy body may name the provider alone: `"target": "local"` is {"provider": "local"}
TargetOrName = Annotated[TargetIn, BeforeValidator(_provider_name), _OrProviderName()]


class NotifyTargetIn(NotifyTarget):
    """Who hears of this run's end: `webhook` and `n8n` get the signed JSON body of webhooks (signed with
    `secret`, or with the run's `notify_secret`), `slack` a Slack-compatible message, `email` a mail."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": E.MODELS["NotifyTargetIn"]})

    secret: str | None = Field(
        default=None, min_length=16, max_length=200, description="webhook, n8n: sign with this secret"
    )

    @model_validator(mode="after")
    def _secret_signs(self) -> NotifyTargetIn:
        if self.secret is not None and self.type not in ("webhook", "n8n"):
            raise ValueError(f"a {self.type} target is not signed: remove `secret`")
        return self


class LaunchRequest(Strict):
    """A ref (`pipeline/iris-classifier@1.0.0`) or inline spec documents, with parameters and a target."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"pipeline": "pipeline/iris-classifier", "parameters": {"estimator": "random_forest"}},
                {"pipeline": E.INLINE_PIPELINE, "target": {"provider": "local"}},
            ]
        },
    )

    pipeline: str | dict[str, Any] | list[dict[str, Any]] = Field(
        description="a ref, one spec document, or a list of documents (the last Pipeline is run)"
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    target: TargetOrName | None = Field(
        default=None,
        description='where to run: {"provider": ..., "options": {...}}, or a provider name ("local")',
    )
    keep: bool = Field(
        default=False, description="keep what the run provisions after it ends (serving), until destroyed"
    )
    notify: list[NotifyTargetIn] | None = Field(
        default=None,
        max_length=MAX_TARGETS,
        description="who hears of the run's end; replaces the pipeline's `spec.notify` ([] for nobody)",
    )

    @field_validator("pipeline", "parameters")
    @classmethod
    def _not_too_deep(cls, v: Any) -> Any:
        if depth(v, MAX_DEPTH) > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, str) and len(v) > 300:
            raise ValueError("a ref is at most 300 characters")
        return v

    def target_dict(self) -> dict[str, Any] | None:
        return self.target.model_dump() if self.target else None

    def notify_list(self) -> list[dict[str, Any]] | None:
        return None if self.notify is None else [t.model_dump() for t in self.notify]


class DeployResponse(BaseModel):
    """The blueprint's answer to a deploy: the run id is the pipeline id."""

    model_config = E.config("DeployResponse")

    pipeline_id: str
    status: RunStatus
    message: str
    notify_secret: str | None = Field(
        default=None,
        description="signs the run's webhook and n8n notifications: shown only here (absent: none)",
    )


class StatusResponse(BaseModel):
    """The blueprint's status answer; `details` says why when the run failed."""

    model_config = E.config("StatusResponse")

    pipeline_id: str
    status: RunStatus
    details: str | None
    timestamp: str


class HealthResponse(BaseModel):
    model_config = E.config("HealthResponse")

    status: Literal["ok"]
    timestamp: str


class Run(BaseModel):
    """A run as the API shows it (times are UNIX seconds)."""

    model_config = E.config("Run")

    id: str
    pipeline: str
    status: RunStatus
    details: str | None
    parameters: dict[str, Any]
    target: dict[str, Any] | None
    steps: list[str]
    outputs: dict[str, Any] | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    heartbeat_at: float | None
    attempts: int
    cancel_requested: bool
    retry_of: str | None


class RunLaunched(Run):
    """A run just launched: `notify_secret` signs its webhook and n8n notifications (shown only here)."""

    model_config = E.config("RunLaunched")

    notify_secret: str | None = None


class GraphStep(BaseModel):
    """One step of a run's graph: the steps it needs (its incoming edges), its playbook and placement."""

    id: str
    needs: list[str]
    playbook: str | None
    provider: str
    deployment: str | None
    node: dict[str, str] | None = Field(
        default=None, description="ray steps: the node that ran the last attempt (id, ip, hostname)"
    )


class RunGraph(BaseModel):
    """A run's steps and their edges, from its compiled plan (what the run page draws)."""

    model_config = E.config("RunGraph")

    run: str
    steps: list[GraphStep]


class RunPage(BaseModel):
    model_config = E.config("RunPage")

    items: list[Run]
    total: int
    limit: int
    offset: int


class RunEvent(BaseModel):
    model_config = E.config("RunEvent")

    seq: int
    type: str
    step: str | None
    ts: float
    data: dict[str, Any]


class ProblemOut(BaseModel):
    model_config = E.config("ProblemOut")

    what: str
    where: str
    fix: str


class FieldError(BaseModel):
    model_config = E.config("FieldError")

    loc: list[str | int]
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error answer: `detail` is a message, or the invalid fields (422, 400, 413); an invalid spec or
    a conflict has `detail` "invalid"/"conflict" and the located `problems`."""

    model_config = E.config("ErrorOut")

    detail: str | list[FieldError]
    problems: list[ProblemOut] | None = None


class ValidateResponse(BaseModel):
    model_config = E.config("ValidateResponse")

    status: Literal["valid"]
    pipeline: str
    steps: int
    warnings: list[ProblemOut] = Field(
        default_factory=list, description="worth fixing, but not invalid (e.g. a parameter in a shell -c)"
    )


class TokenRequest(Strict):
    model_config = E.config("TokenRequest")

    ttl_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    scopes: list[Literal["read", "write", "admin"]] | None = Field(
        default=None,
        min_length=1,
        description="the scopes to carry (default: all of the caller's); an empty list is refused",
    )


class WhoAmI(BaseModel):
    """The calling credential: its key, scopes, and how it was sent."""

    model_config = E.config("WhoAmI")

    key_id: str
    name: str | None = Field(description="the key's name")
    scopes: list[str]
    via: Literal["key", "token", "session"]


class TokenResponse(BaseModel):
    model_config = E.config("TokenResponse")

    access_token: str
    token_type: Literal["bearer"]
    expires_at: float
    scopes: list[str]


class KeyCreate(Strict):
    model_config = E.config("KeyCreate")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@ -]+$")
    scopes: list[Literal["read", "write", "admin"]] = Field(min_length=1)


class KeyOut(BaseModel):
    model_config = E.config("KeyOut")

    id: str
    name: str
    scopes: list[str]
    created_at: float
    revoked_at: float | None


class KeyCreated(KeyOut):
    model_config = E.config("KeyCreated")

    key: str = Field(description="the API key, shown once")


class SaveRequest(Strict):
    """Save spec documents to the catalogue (one commit). Give `spec` (parsed) or `text` (YAML/JSON)."""

    model_config = E.config("SaveRequest")

    spec: dict[str, Any] | list[dict[str, Any]] | None = None
    text: str | None = Field(default=None, max_length=512 * 1024)
    message: str | None = Field(default=None, max_length=2000)
    author: str | None = Field(default=None, max_length=200)
    base: str | None = Field(
        default=None, max_length=64, description="version or commit the edit started from"
    )
    repo: str | None = Field(default=None, max_length=64)

    @field_validator("spec")
    @classmethod
    def _not_too_deep(cls, v: Any) -> Any:
        if v is not None and depth(v, MAX_DEPTH) > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        return v


class SecretIn(Strict):
    """The value of a secret (never shown again)."""

    model_config = E.config("SecretIn")

    value: str = Field(
        min_length=MIN_REDACTED,
        max_length=MAX_VALUE_BYTES,
        description=f"at least {MIN_REDACTED} characters (shorter values could not be redacted from logs "
        f"and outputs), at most {MAX_VALUE_BYTES} bytes of UTF-8, no NUL character",
    )

    @field_validator("value", mode="before")
    @classmethod
    def _runnable(cls, v: Any) -> Any:
        """Refuse, saying why, what no step could be given or what could not be redacted."""
        problem = value_problem(None, v) if isinstance(v, str) else None
        if problem is not None:
            raise ValueError(f"{problem[0]}; fix: {problem[1]}")
        return v


class SecretOut(BaseModel):
    """A secret as listed: its name and when it was set, never its value."""

    model_config = E.config("SecretOut")

    name: str
    created_at: float
    updated_at: float


class Artifact(BaseModel):
    """One pipeline output of a run, as stored (content-addressed by `digest`)."""

    model_config = E.config("Artifact")

    name: str
    type: str | None
    digest: str | None
    step: str | None
    output: str | None
    available: bool = Field(description="false when its file is no longer in the store")
    kind: Literal["file", "directory"] | None
    filename: str | None = Field(description="what a download is saved as (directories: .tar.gz)")
    size: int | None = Field(description="bytes (directories: total of their files)")
    withheld: bool = Field(
        default=False, description="true when it holds the value of a secret its run used: never downloaded"
    )


WebhookEvent = Literal["run.succeeded", "run.failed", "run.cancelled", "alert.firing", "alert.resolved"]
ALL_EVENTS: list[WebhookEvent] = ["run.succeeded", "run.failed", "run.cancelled"]


class WebhookIn(Strict):
    """Where to send run endings (and alerts: `alert.firing`, `alert.resolved`), which ones (default: every
    run ending), and the signing secret (generated when omitted). `type`: `webhook` or `n8n` (signed JSON
    POSTed to `url`), `slack` (a Slack-compatible message POSTed to `url`), `email` (to `to`, over SMTP)."""

    model_config = E.config("WebhookIn")

    type: NotifyType = "webhook"
    url: str | None = Field(
        default=None, min_length=1, max_length=2000, examples=["https://example.org/hooks/mlops"]
    )
    to: list[str] = Field(default_factory=list, max_length=MAX_RECIPIENTS, description="email: recipients")
    events: list[WebhookEvent] = Field(default_factory=lambda: list(ALL_EVENTS), min_length=1)
    secret: str | None = Field(default=None, min_length=16, max_length=200)

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for i, address in enumerate(v):
            try:
                check_address(address)
            except ValueError as e:
                raise ValueError(f"to[{i}]: {e}") from None
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _fields_of_type(self) -> WebhookIn:
        if self.type == "email" and (not self.to or self.url is not None):
            raise ValueError("an email webhook takes `to` (the recipients) and no `url`")
        if self.type != "email" and (self.url is None or self.to):
            raise ValueError(f"a {self.type} webhook takes a `url` and no `to`")
        return self


class WebhookOut(BaseModel):
    model_config = E.config("WebhookOut")

    id: str
    type: NotifyType = "webhook"
    url: str | None
    to: list[str] = Field(default_factory=list)
    events: list[str]
    created_at: float


class WebhookCreated(WebhookOut):
    model_config = E.config("WebhookCreated")

    secret: str = Field(description="shown only in this answer")


class Delivery(BaseModel):
    """One attempt to deliver one event to one webhook."""

    model_config = E.config("Delivery")

    webhook_id: str
    event: str
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    ts: float


class SessionRequest(Strict):
    """Open a browser session: its scopes (default: SESSION_SCOPES, read and write, capped by the caller's;
    `admin` only when asked for) and life (default and maximum: SESSION_TTL_SECONDS)."""

    model_config = E.config("SessionRequest")

    scopes: list[Literal["read", "write", "admin"]] | None = Field(default=None, min_length=1)
    ttl_seconds: int | None = Field(default=None, ge=60, le=30 * 24 * 3600)


class SessionOut(BaseModel):
    """A browser session as listed (never its cookie value)."""

    model_config = E.config("SessionOut")

    id: str
    key_id: str = Field(description="the API key it was opened with")
    scopes: list[str]
    created_at: float
    last_seen_at: float
    expires_at: float = Field(description="absolute end (UNIX time)")
    idle_expires_at: float | None = Field(description="when it ends unless used before (sliding)")
    revoked_at: float | None


class SessionCurrent(SessionOut):
    """The calling browser's own session, with the CSRF token its writes must send (X-CSRF-Token)."""

    model_config = E.config("SessionCurrent")

    csrf_token: str


class OfferOut(BaseModel):
    """One thing a provider rents, with its price per hour (GPU memory is per GPU)."""

    model_config = E.config("OfferOut")

    provider: str
    id: str
    vcpus: float
    memory_gib: float
    gpu_type: str
    gpu_count: int
    gpu_memory_gib: float
    price_per_hour: float
    currency: str
    region: str
    extra: dict[str, Any] = Field(default_factory=dict)


class SheetOut(BaseModel):
    """The price sheet in use: its date and source; `refreshed` when `mlops targets refresh` wrote it."""

    model_config = E.config("SheetOut")

    date: str | None
    source: str | None
    refreshed: bool
    currency: str | None = None
    error: str | None = None


class TargetOut(BaseModel):
    """A target provider: installed or not (`reason`), its state (credentials and tools present or
    missing, by name only), its features and its offers, cheapest first."""

    model_config = E.config("TargetOut")

    provider: str
    installed: bool
    available: bool = Field(description="usable now: installed, credentials and tools present")
    ready: bool
    reason: str | None = None
    credentials: bool | None = None
    missing: list[str] = Field(default_factory=list)
    terraform: bool | None = Field(default=None, description="terraform/tofu present (None: not needed)")
    tools: dict[str, bool] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    features: dict[str, Any] | None = None
    sheet: SheetOut | None = None
    offers: list[OfferOut] = Field(default_factory=list)
