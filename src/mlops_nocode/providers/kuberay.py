"""A KubeRay `RayCluster` (ray.io/v1) sized for the ray steps of a plan: what brings a Ray cluster up on a
K3s (or any Kubernetes) cluster that runs the KubeRay operator.

- head group: no tasks run on it (`num-cpus: "0"`); its size comes from `head`.
- CPU worker group "cpu": every python/command step without GPUs fits one worker (the largest CPU and
  memory any of them asks for, plus the object store's memory so that Ray's `memory` resource of the
  worker still covers the step's need), with the custom resources they ask for (`rayStartParams.resources`).
- GPU worker group "gpu" (only when some step asks for GPUs): the same for those steps, with
  `nvidia.com/gpu` requests/limits and the CUDA image.

Options (the ray target's `options.kuberay`, or `mlops targets kuberay`) are checked by a pydantic model:
a bad value is a located Problem at `mlops validate`/`mlops plan` time and nothing is rendered. Names,
labels, images and selectors are checked against Kubernetes' patterns, and the manifest is written with
yaml.safe_dump, so no value can escape its string. No secret is in it. Pure: creates nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers.base import Bundle, Deployment, ProviderError
from mlops_nocode.providers.k3s_render import dns_label, label_value
from mlops_nocode.spec import Problem
from mlops_nocode.spec.models import CUSTOM_RESOURCE_RE, RESERVED_RESOURCES
from mlops_nocode.spec.values import MEMORY_RE, memory_bytes

RAY_VERSION = "2.60.0"
DEFAULT_IMAGE = f"rayproject/ray:{RAY_VERSION}-py311"
PLATFORM = "platform"  # `image: platform`: the platform's runner images (RUNNER_IMAGE, RUNNER_IMAGE_CUDA)
RAY_UID, RAY_GID = 1000, 100  # the `ray` user and `users` group of the rayproject/ray images
RUNTIMES = ("python", "command")  # what runs as Ray tasks on the workers (http steps stay in the Runner)
MANIFEST = "manifests/raycluster.yaml"
_GPU = "nvidia.com/gpu"

_Label = Annotated[
    str, StringConstraints(max_length=63, pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
]
_LabelKey = Annotated[
    str,
    StringConstraints(
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
    ),
]
_Name = Annotated[str, StringConstraints(max_length=40, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
_Namespace = Annotated[str, StringConstraints(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
_Image = Annotated[str, StringConstraints(max_length=255, pattern=r"^[a-z0-9][A-Za-z0-9._/:@-]*$")]
_Memory = Annotated[str, StringConstraints(max_length=24, pattern=MEMORY_RE.pattern)]
_Selector = dict[_LabelKey, _Label]


class _Opts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Head(_Opts):
    """The head pod: it runs Ray's control plane (GCS, dashboard), never a step."""

    cpu: float = Field(default=1, gt=0, le=512)
    memory: _Memory = "2Gi"
    node_selector: _Selector = Field(default_factory=dict)


class Group(_Opts):
    """A worker group's size: `replicas` workers, between `min` and `max` (the autoscaler's bounds)."""

    replicas: int = Field(default=1, ge=0, le=1000)
    min: int | None = Field(default=None, ge=0, le=1000, description="default: replicas")
    max: int | None = Field(default=None, ge=0, le=1000, description="default: replicas")
    node_selector: _Selector = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounds(self) -> Group:
        low = self.replicas if self.min is None else self.min
        high = self.replicas if self.max is None else self.max
        if not low <= self.replicas <= high:
            raise ValueError(f"needs min ({low}) <= replicas ({self.replicas}) <= max ({high})")
        return self

    def bounds(self) -> tuple[int, int]:
        return (
            self.replicas if self.min is None else self.min,
            self.replicas if self.max is None else self.max,
        )


class KubeRayOptions(_Opts):
    """The ray target's `options.kuberay` (every field optional)."""

    name: _Name | None = Field(default=None, description="the RayCluster's name (default: from the run)")
    namespace: _Namespace = "mlops-ray"
    image: _Image = Field(default=DEFAULT_IMAGE, description="an image, or 'platform' for RUNNER_IMAGE")
    gpu_image: _Image | None = Field(default=None, description="default: the image's -gpu variant")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    ray_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = RAY_VERSION
    object_store_memory: _Memory = "1Gi"
    autoscaling: bool = False
    network_policy: bool = Field(default=False, description="only its pods and labelled clients connect")
    labels: dict[_LabelKey, _Label] = Field(default_factory=dict)
    head: Head = Field(default_factory=Head)
    workers: Group = Field(default_factory=Group)
    gpu_workers: Group = Field(default_factory=Group)

    @model_validator(mode="after")
    def _store(self) -> KubeRayOptions:
        if memory_bytes(self.object_store_memory) < 80 * 2**20:
            raise ValueError("object_store_memory must be at least 80Mi (Ray's minimum is 75 MB)")
        return self


def option_problems(value: object, where: str = "target.options.kuberay") -> list[Problem]:
    """Why `value` is not a valid `kuberay` option (empty when it is), each problem located under `where`."""
    try:
        parse(value)
    except ValidationError as e:
        return [_problem(err, where) for err in e.errors(include_url=False)]
    return []


def parse(value: object) -> KubeRayOptions:
    """The options (`true` or `{}` = every default); pydantic's ValidationError otherwise."""
    return KubeRayOptions.model_validate({} if value is True else value)


_FIXES = {
    "name": "a DNS label of at most 40 characters: lowercase letters, digits and '-'",
    "namespace": "a DNS label: lowercase letters, digits and '-'",
    "image": "an image reference such as rayproject/ray:2.60.0-py311, or 'platform'",
    "gpu_image": "an image reference such as rayproject/ray:2.60.0-py311-gpu",
    "labels": "label keys like team or example.com/team; values up to 63 of letters, digits, '-', '_', '.'",
    "workers": "replicas, min and max: whole numbers with min <= replicas <= max; node_selector: labels",
    "gpu_workers": "replicas, min and max: whole numbers with min <= replicas <= max; node_selector: labels",
    "head": "cpu: a number; memory like 2Gi; node_selector: labels",
    "object_store_memory": "a memory such as 1Gi (at least 80Mi)",
    "ray_version": "the Ray version of the image, e.g. 2.60.0",
}


def _problem(err: Mapping[str, Any], where: str) -> Problem:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    got = repr(err.get("input"))[:60] if err.get("type") != "missing" else "nothing"
    msg = "not of the allowed form" if err.get("type") == "string_pattern_mismatch" else err.get("msg")
    what = f"kuberay option {loc or 'value'} is {got}: {msg or 'invalid'}"
    if err.get("type") == "extra_forbidden":
        what = f"kuberay option {loc!r} is unknown"
    head = str(err.get("loc", ("",))[0]) if err.get("loc") else ""
    fix = _FIXES.get(head, "see docs/RAY.md (KubeRay)")
    if err.get("type") == "extra_forbidden":
        fields = Group.model_fields if head in ("workers", "gpu_workers") else KubeRayOptions.model_fields
        fields = Head.model_fields if head == "head" and "." in loc else fields
        fix = "valid keys: " + ", ".join(fields)
    return Problem(what, f"{where}.{loc}" if loc else where, fix)


@dataclass(slots=True)
class Need:
    """The largest needs of the steps one worker group serves."""

    cpu: float = 0.0
    memory: int = 0
    gpu: int = 0
    custom: dict[str, float] = field(default_factory=dict)
    steps: int = 0

    def add(self, cpu: float, memory: int, gpu: int, custom: Mapping[str, float]) -> None:
        self.cpu, self.memory, self.gpu = max(self.cpu, cpu), max(self.memory, memory), max(self.gpu, gpu)
        for k, v in custom.items():
            self.custom[k] = max(self.custom.get(k, 0.0), v)
        self.steps += 1


def needs(steps: Iterable[PlanStep]) -> tuple[Need, Need]:
    """The needs of the CPU group and of the GPU group (`steps == 0`: no such group). Plans are
    untrusted: a malformed resource is a ValueError naming the step."""
    cpu_group, gpu_group = Need(), Need()
    for s in steps:
        if s.runtime not in RUNTIMES:
            continue
        res = s.resources or {}
        try:
            cpu, gpu = float(res.get("cpu", 1)), res.get("gpu", 0)
            memory = memory_bytes(str(res.get("memory", "512Mi")))
            custom = {str(k): float(v) for k, v in dict(res.get("custom") or {}).items()}
        except (TypeError, ValueError) as e:
            raise ValueError(f"step {s.id} has unusable resources: {e}") from None
        if isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0 or not 0 < cpu <= 1e5:
            raise ValueError(f"step {s.id} asks for {res.get('cpu')!r} CPUs and {gpu!r} GPUs")
        for k, v in custom.items():
            if not CUSTOM_RESOURCE_RE.fullmatch(k) or k in RESERVED_RESOURCES or not 0 < v <= 1e6:
                raise ValueError(f"step {s.id} asks for custom resource {k[:40]!r}: {v!r}")
        (gpu_group if gpu else cpu_group).add(cpu, memory, gpu, custom)
    return cpu_group, gpu_group


def _images(o: KubeRayOptions) -> tuple[str, str]:
    if o.image == PLATFORM:
        from mlops_nocode.settings import Settings

        s = Settings()
        return s.runner_image, o.gpu_image or s.runner_image_cuda
    gpu = o.gpu_image or (f"{o.image}-gpu" if o.image == DEFAULT_IMAGE else o.image)
    return o.image, gpu


def _mi(n: int) -> str:
    return f"{math.ceil(n / 2**20)}Mi"


def raycluster(steps: Iterable[PlanStep], o: KubeRayOptions, *, name: str, run: str = "") -> dict[str, Any]:
    """The RayCluster object for `steps` (see the module docstring); ValueError when no step needs a
    worker or a step's resources are malformed."""
    cpu_need, gpu_need = needs(steps)
    if not cpu_need.steps and not gpu_need.steps:
        raise ValueError("no python or command step to size the workers for (only those run as Ray tasks)")
    image, gpu_image = _images(o)
    labels = {
        **o.labels,
        "app.kubernetes.io/managed-by": "mlops-nocode",
        "app.kubernetes.io/name": "mlops-raycluster",
        "mlops-nocode/raycluster": name,
    }
    if run:
        labels["mlops-nocode/run"] = label_value(run)
    store = memory_bytes(o.object_store_memory)
    head_sizes = {"cpu": f"{o.head.cpu:g}", "memory": o.head.memory}
    head = {
        "rayStartParams": {"num-cpus": "0", "object-store-memory": str(store)},
        "template": _template("ray-head", image, o, head_sizes, labels, o.head.node_selector, head=True),
    }
    groups = []
    for group, need, img, opts in (
        ("cpu", cpu_need, image, o.workers),
        ("gpu", gpu_need, gpu_image, o.gpu_workers),
    ):
        if not need.steps:
            continue
        sizes: dict[str, str] = {
            "cpu": str(max(1, math.ceil(need.cpu))),
            "memory": _mi(max(need.memory, 2**28) + store),
        }
        if need.gpu:
            sizes[_GPU] = str(need.gpu)
        params = {"object-store-memory": str(store)}
        if need.custom:  # KubeRay's documented form: a quoted JSON string, passed to `ray start`
            params["resources"] = '"' + json.dumps(need.custom, sort_keys=True).replace('"', '\\"') + '"'
        low, high = opts.bounds()
        groups.append(
            {
                "groupName": group,
                "replicas": opts.replicas,
                "minReplicas": low,
                "maxReplicas": high,
                "rayStartParams": params,
                "template": _template("ray-worker", img, o, sizes, labels, opts.node_selector, head=False),
            }
        )
    spec: dict[str, Any] = {
        "rayVersion": o.ray_version,
        "enableInTreeAutoscaling": o.autoscaling,
        "headGroupSpec": head,
        "workerGroupSpecs": groups,
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": o.namespace, "labels": labels},
        "spec": spec,
    }


def _template(
    container_name: str,
    image: str,
    o: KubeRayOptions,
    sizes: Mapping[str, str],
    labels: Mapping[str, str],
    selector: Mapping[str, str],
    *,
    head: bool,
) -> dict[str, Any]:
    """A pod template with the project's hardening: non-root, no privilege escalation, no capability,
    read-only root filesystem (Ray writes under /tmp and /dev/shm: emptyDirs), no service links, and no
    service-account token except on the head when the autoscaler (which calls the API) runs."""
    container: dict[str, Any] = {
        "name": container_name,
        "image": image,
        "imagePullPolicy": o.image_pull_policy,
        "resources": {"requests": dict(sizes), "limits": dict(sizes)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "shm", "mountPath": "/dev/shm"},
        ],
    }
    if head:
        container["ports"] = [
            {"name": "gcs", "containerPort": 6379},
            {"name": "dashboard", "containerPort": 8265},
            {"name": "client", "containerPort": 10001},
        ]
    pod: dict[str, Any] = {
        "automountServiceAccountToken": head and o.autoscaling,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RAY_UID,
            "runAsGroup": RAY_GID,
            "fsGroup": RAY_GID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "shm", "emptyDir": {"medium": "Memory"}},
        ],
    }
    if selector:
        pod["nodeSelector"] = dict(selector)
    role = "head" if head else "worker"
    return {"metadata": {"labels": {**labels, "mlops-nocode/role": role}}, "spec": pod}


def manifests(
    steps: Iterable[PlanStep], o: KubeRayOptions, *, name: str, run: str = ""
) -> list[dict[str, Any]]:
    """The RayCluster, and its NetworkPolicy when `network_policy` is on (kuberay_net.py)."""
    from mlops_nocode.providers.kuberay_net import network_policy

    obj = raycluster(steps, o, name=name, run=run)
    return [obj, network_policy(obj)] if o.network_policy else [obj]


def manifest_yaml(objs: Iterable[Mapping[str, Any]]) -> str:
    """The objects as YAML documents (safe_dump quotes every string that needs it)."""
    head = "# KubeRay RayCluster (ray.io/v1) by mlops-nocode: kubectl apply -f (needs the KubeRay operator)\n"
    return head + yaml.safe_dump_all([dict(o) for o in objs], sort_keys=False, width=100)


def cluster_name(run_id: str, deployment: str) -> str:
    """A default RayCluster name, `mlops-RUN-DEPLOYMENT` as a DNS label of at most 40 characters (KubeRay
    derives longer names from it: services, pods)."""
    text = dns_label(f"mlops-{run_id}-{deployment}")
    return text if len(text) <= 40 else dns_label(text[:31].strip("-") + "-" + text[-8:])


def with_raycluster(base: Bundle, d: Deployment) -> Bundle:
    """The ray deployment's bundle `base` plus the RayCluster its target's `kuberay` option asks for
    (`manifests/raycluster.yaml`; render-only: apply it with kubectl where the KubeRay operator runs,
    then point `address` at its head). ProviderError, located, for bad options or resources."""
    where = f"deployment {d.name} (ray) > target.options.kuberay"
    problems = option_problems(d.options.get("kuberay"), "target.options.kuberay")
    if problems:
        p = problems[0]
        raise ProviderError(p.what, f"deployment {d.name} (ray) > {p.where}", p.fix)
    o = parse(d.options.get("kuberay"))
    name = o.name or cluster_name(d.run_id, d.name)
    try:
        objs = manifests(d.steps, o, name=name, run=d.run_id)
    except ValueError as e:
        raise ProviderError(str(e), where, "give the ray steps cpu, memory and gpu resources") from None
    created = tuple({"type": x["kind"], "name": f"{o.namespace}/{x['metadata']['name']}"} for x in objs)
    return dataclasses.replace(
        base, files={**base.files, MANIFEST: manifest_yaml(objs)}, resources=(*base.resources, *created)
    )
