"""The small interface every target provider implements, and the data types it speaks in.

A provider module (`providers/<name>.py`, one per target, as SkyPilot's clouds/) exposes one object that
satisfies `Provider`. What it can and cannot do is data (`Features`), its offers come from a dated price
sheet shipped with the package (`providers/prices/<name>.json`), and everything that talks to a vendor
(SDKs, HTTP clients, `terraform`) is imported or started lazily, inside the method that needs it.

The flow (written once, used by the CLI and the gateway alike):

    compile ─► place (a `Placement` per step) ─► group steps into `Deployment`s (one per provider and
    offer and options) ─► render each (`Bundle`: files, resources, cost; creates nothing)
    ─► provision (`Provisioned`: what exists) ─► launch the Runner on it ─► status ─► teardown
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mlops_nocode.compiler.plan import Plan, PlanStep

__all__ = [
    "Bundle",
    "Deployment",
    "Features",
    "LaunchSpec",
    "Offer",
    "Provider",
    "ProviderError",
    "Provisioned",
    "TargetState",
]


class ProviderError(RuntimeError):
    """A provider could not do what was asked (bad credentials, quota, no capacity, missing binary...).

    `what`, `where` and `fix` read like a `Problem`'s; `created` lists what exists nonetheless (so a
    caller can tear it down: no orphans)."""

    def __init__(self, what: str, where: str, fix: str, created: Sequence[str] = ()) -> None:
        super().__init__(what)
        self.what, self.where, self.fix, self.created = what, where, fix, tuple(created)


@dataclass(frozen=True, slots=True)
class Offer:
    """One thing a provider rents: an instance type, a GPU pod type, a node pool... with its price."""

    provider: str
    id: str  # the provider's own name for it (instance type, GPU type id, offer id)
    vcpus: float
    memory_gib: float
    price_per_hour: float  # in `currency`, for one unit as offered (gpu_count GPUs included)
    region: str = ""  # region or zone; "" when the offer is not tied to one
    gpu_type: str = ""  # "" for CPU-only offers; otherwise a normalised name such as "A100-80GB"
    gpu_count: int = 0
    gpu_memory_gib: float = 0.0  # per GPU
    currency: str = "USD"
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific facts (disk, reliability)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "id": self.id,
            "vcpus": self.vcpus,
            "memory_gib": self.memory_gib,
            "gpu_type": self.gpu_type,
            "gpu_count": self.gpu_count,
            "gpu_memory_gib": self.gpu_memory_gib,
            "price_per_hour": self.price_per_hour,
            "currency": self.currency,
            "region": self.region,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Offer:
        return cls(
            provider=str(d["provider"]),
            id=str(d["id"]),
            vcpus=float(d["vcpus"]),
            memory_gib=float(d["memory_gib"]),
            price_per_hour=float(d["price_per_hour"]),
            region=str(d.get("region", "")),
            gpu_type=str(d.get("gpu_type", "")),
            gpu_count=int(d.get("gpu_count", 0)),
            gpu_memory_gib=float(d.get("gpu_memory_gib", 0.0)),
            currency=str(d.get("currency", "USD")),
            extra=dict(d.get("extra", {})),
        )


@dataclass(frozen=True, slots=True)
class Features:
    """What a provider can run, and what it knowingly cannot, as data (checked at plan time)."""

    runtimes: frozenset[str]
    unsupported: Mapping[str, str] = field(default_factory=dict)  # feature -> why / what to do instead
    gpus: bool = False
    provisions: bool = True  # False for `local`: nothing is created
    iac: str = "terraform"  # "terraform", "sdk" (API requests rendered as JSON) or "none"
    custom_resources: bool = False  # steps' resources.custom (named resources) can be had (ray)


@dataclass(frozen=True, slots=True)
class TargetState:
    """Whether a provider can be used from here now, and what is missing when it cannot."""

    provider: str
    credentials: bool  # the credentials it needs are present (always True when it needs none)
    missing: tuple[str, ...] = ()  # what to set or install, by name (env variables, binaries)
    tools: Mapping[str, str | None] = field(default_factory=dict)  # binary -> path, or None if absent
    notes: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.credentials and not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "ready": self.ready,
            "credentials": self.credentials,
            "missing": list(self.missing),
            "tools": dict(self.tools),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class Deployment:
    """The steps of one run that go to one place: same provider, offer and options. `name` is safe for
    file names and resource names (letters, digits, '-'), unique within the run."""

    run_id: str
    name: str
    provider: str
    offer: Offer | None  # None for `local`
    options: Mapping[str, Any]
    steps: tuple[PlanStep, ...]
    plan: Plan  # the whole placed plan (the remote Runner gets it and runs `steps` only)


@dataclass(frozen=True, slots=True)
class Bundle:
    """What `render` produces, creating nothing: the files to apply (a Terraform root module as
    `main.tf.json`, Kubernetes objects, the exact API requests for an SDK provider), the resources that
    would be created, and the estimated cost. No secret value is ever in it: secrets are passed at
    provision time through the environment (TF_VAR_*) and sensitive variables."""

    deployment: str  # Deployment.name
    provider: str
    files: Mapping[str, str]  # relative path -> text
    resources: tuple[Mapping[str, str], ...]  # {"type": ..., "name": ...} per resource to be created
    price_per_hour: float
    hours: float | None = None  # expected duration, when the steps declare one
    env: tuple[str, ...] = ()  # names (never values) of environment variables provision passes on

    @property
    def total(self) -> float | None:
        return None if self.hours is None else round(self.price_per_hour * self.hours, 4)

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "files": dict(self.files),
            "resources": [dict(r) for r in self.resources],
            "cost": {"per_hour": self.price_per_hour, "hours": self.hours, "total": self.total},
            "env": list(self.env),
        }

    def write(self, folder: Path) -> list[Path]:
        """Write the files under `folder` (created); returns the paths written."""
        written = []
        for rel, text in self.files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        return written


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """How the remote Runner is started on what was provisioned: `mlops execute plan.json --report-to
    URL` with the run token (in the environment only) and the artifact store's address."""

    plan_json: str
    report_to: str
    step_ids: tuple[str, ...]
    env_names: tuple[str, ...] = ()  # names of environment variables whose values reach the Runner


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What exists for one deployment: enough for `status` and `teardown`, also after a restart (it is
    JSON-able and recorded with the run). `workdir` holds Terraform's state, when Terraform made it."""

    deployment: str
    provider: str
    resources: tuple[Mapping[str, str], ...]
    workdir: str | None = None
    handle: Mapping[str, Any] = field(default_factory=dict)  # provider ids (instance id, pod id...)

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "resources": [dict(r) for r in self.resources],
            "workdir": self.workdir,
            "handle": dict(self.handle),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Provisioned:
        return cls(
            deployment=str(d["deployment"]),
            provider=str(d["provider"]),
            resources=tuple(dict(r) for r in d.get("resources", ())),
            workdir=d.get("workdir"),
            handle=dict(d.get("handle", {})),
        )


@runtime_checkable
class Provider(Protocol):
    """One target. Methods that create or change something (provision, launch, teardown) raise
    ProviderError with what, where and how to fix; the others never touch the network except
    `refresh_offers`."""

    name: str
    features: Features

    def state(self, env: Mapping[str, str]) -> TargetState:
        """Credentials and binaries present or missing (reads `env`, looks up binaries; no network)."""
        ...

    def offers(self) -> list[Offer]:
        """The offers of the shipped (or refreshed) price sheet."""
        ...

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        """Fetch offers and prices from the provider's API (needs credentials) and store them as the
        price sheet used from then on."""
        ...

    def render(self, deployment: Deployment) -> Bundle:
        """The IaC bundle for one deployment; pure: creates nothing, reads no secret value."""
        ...

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        """Create what the bundle describes (its own state and lock under `workdir`). A failure destroys
        what it created before raising."""
        ...

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        """Start the Runner on what was provisioned (often done by provision itself via cloud-init or
        the pod's start command: then this only checks it started)."""
        ...

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        """One of "pending", "running", "exited", "lost" (gone while it should run), "destroyed"."""
        ...

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        """Destroy everything `provisioned` names; safe to call twice and after a failed provision."""
        ...
