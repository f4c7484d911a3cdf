"""The `runpod` provider: one RunPod pod per deployment (GPU type and count, the runner image, a start
command, environment, a volume), made by the shipped Terraform module `deploy/terraform/modules/runpod`
(official `runpod/runpod` provider). The pod's start command decodes the plan from its environment and
runs `mlops execute plan.json --report-to URL`.

Credentials: RUNPOD_API_KEY, read by the Terraform provider from the environment and by the GraphQL
client here (`refresh_offers`, `status`); never written to a file."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.iac import hcl
from mlops_nocode.providers import _cloud
from mlops_nocode.providers.base import (
    Bundle,
    Deployment,
    Features,
    LaunchSpec,
    Offer,
    ProviderError,
    Provisioned,
    TargetState,
)
from mlops_nocode.providers.pricing import PriceSheet, save_sheet
from mlops_nocode.runtime.executors import runtimes_for

NAME = "runpod"
CREDENTIALS = ("RUNPOD_API_KEY",)
COUNTS = (1, 2, 4, 8)


class RunpodSettings(BaseSettings):
    """RunPod settings, read from the environment (the API key is read only where it is used)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    runpod_graphql_url: str = Field(
        default="https://api.runpod.io/graphql",
        pattern=r"^https?://[^\s?#]+$",
        description="RunPod's GraphQL endpoint",
    )
    runpod_runner_image: str = Field(
        default="",
        pattern=r"^([a-z0-9][A-Za-z0-9._/:@-]{0,254})?$",
        description="the runner image pods start; empty: RUNNER_IMAGE_CUDA (deploy/docker's CUDA runner)",
    )
    runpod_cloud_type: str = Field(default="SECURE", pattern=r"^(SECURE|COMMUNITY)$")
    runpod_volume_gb: int = Field(default=20, ge=0, le=10_000, description="pod volume (GB), at /workspace")
    runpod_container_disk_gb: int = Field(default=20, ge=5, le=10_000, description="container disk (GB)")


class RunpodProvider:
    """RunPod GPU pods through Terraform."""

    name = NAME
    features = Features(
        runtimes=runtimes_for("runpod"),
        unsupported={
            "litellm": "model routes and their keys live with the gateway's MLOPS_HOME, which a remote "
            "Runner cannot read: run litellm steps on the local target",
            "container": "a pod is itself a container running the Runner's image: it cannot start the "
            "step's image (no container engine), and a pod of the step's image would have no Runner to "
            "fetch its inputs and upload its outputs; place the step on a k3s target (a Kubernetes Job of "
            "its image) or on local (Podman or Docker)",
            "cpu-only": "this target rents GPU pods only; run CPU-only steps on local, k3s or exoscale",
            "ssh": "pods are reached through the gateway's reports only; no SSH key is installed",
            "spot": "interruptible (spot) pods are not used: a lost pod would fail the run",
        },
        gpus=True,
        provisions=True,
        iac="terraform",
    )

    def state(self, env: Mapping[str, str]) -> TargetState:
        return _cloud.target_state(NAME, env, CREDENTIALS)

    def offers(self) -> list[Offer]:
        return _cloud.offers(NAME)

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        """GPU types and their lowest on-demand price (`lowestPrice.uninterruptablePrice`) from the GraphQL
        API; a pod of N GPUs costs N times the per-GPU price. Types without an on-demand price (none
        available now) are left out."""
        from mlops_nocode.providers import runpod_api

        conf = _cloud.settings(RunpodSettings, "RUNPOD_")
        offers = []
        for t in runpod_api.gpu_types(env, conf.runpod_graphql_url):
            found = t.get("lowestPrice")
            low: dict[str, Any] = found if isinstance(found, dict) else {}
            price = low.get("uninterruptablePrice")
            if not isinstance(price, int | float) or price <= 0 or not t.get("id"):
                continue
            gpu_id = str(t["id"])
            for n in COUNTS:
                if n > int(t.get("maxGpuCount") or 1):
                    break
                offers.append(
                    Offer(
                        provider=NAME,
                        id=gpu_id,
                        vcpus=float(low.get("minVcpu") or 1) * n,
                        memory_gib=float(low.get("minMemory") or 1) * n,
                        price_per_hour=round(float(price) * n, 4),
                        region=conf.runpod_cloud_type,
                        gpu_type=_normalise(str(t.get("displayName") or gpu_id)),
                        gpu_count=n,
                        gpu_memory_gib=float(t.get("memoryInGb") or 0),
                        extra={"gpu_type_id": gpu_id, "cloud_type": conf.runpod_cloud_type},
                    )
                )
        if not offers:
            raise ProviderError(
                "the RunPod API listed no GPU type with an on-demand price",
                f"RunPod GraphQL API ({conf.runpod_graphql_url})",
                "retry later; the shipped sheet stays in use",
            )
        today = datetime.date.today().isoformat()
        source = f"RunPod GraphQL API gpuTypes {{ lowestPrice {{ uninterruptablePrice }} }} on {today}"
        save_sheet(PriceSheet(NAME, today, source, "USD", tuple(offers)))
        return offers

    def render(self, deployment: Deployment) -> Bundle:
        conf = _cloud.settings(RunpodSettings, "RUNPOD_")
        opts = deployment.options
        offer = deployment.offer or _chosen(self.offers(), deployment)
        if offer.gpu_count < 1:
            raise ProviderError(
                f"RunPod offer {offer.id!r} has no GPU: this target rents GPU pods only",
                f"deployment {deployment.name}",
                "choose a GPU offer, or run the steps on another target",
            )
        plan_text = json.dumps(deployment.plan.to_json(), sort_keys=True, separators=(",", ":"))
        ports = str(
            opts.get("ports") or (f"{int(opts['serve_port'])}/http" if opts.get("serve_port") else "")
        )
        name = _cloud.resource_name(deployment)
        module = {
            "source": f"./modules/{NAME}",
            "name": name,
            "gpu_type_id": str(offer.extra.get("gpu_type_id") or offer.id),
            "gpu_count": offer.gpu_count,
            "cloud_type": str(offer.extra.get("cloud_type") or conf.runpod_cloud_type),
            "image": str(opts.get("image") or conf.runpod_runner_image or _cuda_image()),
            "container_disk_gb": int(opts.get("container_disk_gb") or conf.runpod_container_disk_gb),
            "volume_gb": int(opts.get("volume_gb", conf.runpod_volume_gb)),
            "ports": ports,
            "plan_json": plan_text,
            "runner_env": {"MLOPS_DEPLOYMENT": deployment.name},
        }
        root = {
            "terraform": {"required_providers": {NAME: {"source": "runpod/runpod", "version": "~> 1.0"}}},
            "provider": {NAME: {}},
            "variable": {
                "run_token": {"type": "string", "sensitive": True},
                "secret_env": {"type": "map(string)", "sensitive": True, "default": {}},
                "report_to": {"type": "string", "default": _cloud.report_url()},
            },
            "module": {"runner": {**hcl.value(module), **_REFS}},
            "output": {"pod_id": {"value": "${module.runner.pod_id}"}},
        }
        return Bundle(
            deployment=deployment.name,
            provider=NAME,
            files={"main.tf.json": _cloud.bundle_json(root), **_cloud.module_files(NAME)},
            resources=({"type": "runpod_pod", "name": name},),
            price_per_hour=offer.price_per_hour,
            hours=_cloud.expected_hours(deployment),
            env=("MLOPS_RUN_TOKEN", "MLOPS_REPORT_TO", "ARTIFACT_STORE_*", *CREDENTIALS),
        )

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        return _cloud.provision(bundle, workdir, env, ("pod_id",))

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        """The pod's start command runs the Runner; this only checks the pod still exists."""
        _cloud.check_started("RunPod pod", provisioned, self.status(provisioned, env))

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        from mlops_nocode.providers import runpod_api

        pod_id = str(provisioned.handle.get("pod_id") or "")
        if not pod_id:
            return "destroyed"
        found = runpod_api.pod(env, _cloud.settings(RunpodSettings, "RUNPOD_").runpod_graphql_url, pod_id)
        if found is None:
            return "lost"
        return _STATES.get(str(found.get("desiredStatus", "")), "pending")

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        _cloud.teardown(provisioned, env)


# RunPod PodStatus values -> Provider.status words
_STATES = {
    "CREATED": "pending",
    "RESTARTING": "pending",
    "RUNNING": "running",
    "EXITED": "exited",
    "PAUSED": "exited",
    "DEAD": "lost",
    "TERMINATED": "destroyed",
}

_REFS = {
    "run_token": "${var.run_token}",
    "secret_env": "${var.secret_env}",
    "report_to": "${var.report_to}",
}


def _cuda_image() -> str:
    from mlops_nocode import __version__

    return _cloud.platform_setting("runner_image_cuda", f"mlops-nocode-runner:{__version__}-cuda")


def _normalise(display: str) -> str:
    """RunPod's display name as the sheet's GPU type: "RTX 4090" -> "RTX4090", "A100 80GB" -> "A100-80GB"."""
    words = display.replace("NVIDIA", "").replace("GeForce", "").split()
    if len(words) >= 2 and words[0] in ("RTX", "GTX") and words[1][:1].isdigit():
        words = [words[0] + words[1], *words[2:]]
    return "-".join(words).upper()


def _chosen(offers: list[Offer], deployment: Deployment) -> Offer:
    """The offer named by the target options (`gpu_type`, `gpu_count`), else the cheapest that fits."""
    wanted = deployment.options.get("gpu_type")
    count = int(deployment.options.get("gpu_count") or 0)
    pool = [
        o
        for o in offers
        if (not wanted or wanted in (o.id, o.gpu_type)) and (not count or o.gpu_count == count)
    ]
    if wanted and not pool:
        raise ProviderError(
            f"RunPod has no GPU type {wanted!r}" + (f" with {count} GPU(s)" if count else ""),
            f"deployment {deployment.name} > target.options.gpu_type",
            "choose one that `mlops targets` lists for runpod",
        )
    if _cloud.needs(deployment)[2] == 0 and not wanted:
        # GPU pods only: a CPU-only deployment gets the cheapest single-GPU pod that fits
        pool = [o for o in pool if o.gpu_count >= 1]
        cpu, mem, _ = _cloud.needs(deployment)
        fits = [o for o in pool if o.vcpus >= cpu and o.memory_gib >= mem]
        if fits:
            return min(fits, key=lambda o: (o.price_per_hour, o.id))
    return _cloud.cheapest_fit(NAME, pool, deployment)


PROVIDER = RunpodProvider()
