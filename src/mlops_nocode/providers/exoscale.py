"""The `exoscale` provider: one Exoscale compute instance per deployment (GPU instance types where Exoscale
offers them), with its security group and rules and an optional SSH key, made by the shipped Terraform
module `deploy/terraform/modules/exoscale` (official `exoscale/exoscale` provider). Cloud-init installs
the platform (pip) or pulls the runner image, then starts `mlops execute plan.json --report-to URL`.

Credentials: EXOSCALE_API_KEY / EXOSCALE_API_SECRET, read by the Terraform provider from the environment
and by the API client here (`refresh_offers`, `status`); never written to a file."""

from __future__ import annotations

import base64
import datetime
import gzip
import json
from collections.abc import Mapping
from pathlib import Path

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
from mlops_nocode.providers.pricing import PriceSheet, load_sheet, save_sheet
from mlops_nocode.runtime.executors import runtimes_for

NAME = "exoscale"
CREDENTIALS = ("EXOSCALE_API_KEY", "EXOSCALE_API_SECRET")
USER_DATA_PLAN_MAX = 24 * 1024  # Exoscale user-data is at most 32 KiB; the plan gets most of it


class ExoscaleSettings(BaseSettings):
    """Exoscale settings, read from the environment (the API secret is read only where it is used)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    exoscale_zone: str = Field(
        default="ch-gva-2",
        pattern=r"^[a-z]{2}-[a-z]{3}-[0-9]$",
        description="zone whose API endpoint is asked",
    )
    exoscale_runner_image: str = Field(
        default="",
        pattern=r"^([a-z0-9][a-z0-9._/:@-]{0,254})?$",
        description="runner image the instance runs; empty: the platform is installed with pip",
    )
    exoscale_pip_spec: str = Field(
        default="mlops-nocode", max_length=300, description="pip requirement installed when no image is set"
    )
    exoscale_disk_gb: int = Field(default=50, ge=10, le=51200, description="root disk of each instance (GiB)")
    exoscale_template: str = Field(
        default="Linux Ubuntu 24.04 LTS 64-bit", max_length=200, description="public template booted"
    )


class ExoscaleProvider:
    """Exoscale compute instances through Terraform."""

    name = NAME
    features = Features(
        runtimes=runtimes_for("exoscale"),
        unsupported={
            "litellm": "model routes and their keys live with the gateway's MLOPS_HOME, which a remote "
            "Runner cannot read: run litellm steps on the local target",
            "container": "the Runner on an instance has no container executor; use a python or command step",
            "spot": "Exoscale has no spot or preemptible instances; instances are billed at list price",
            "multi-node": "one instance per deployment; split the pipeline into deployments instead",
            "gpu-sharing": "a GPU instance type is rented whole (MIG profiles exist only in SKS node pools)",
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
        """Instance types (vCPU, memory, GPUs, zones) from `GET /v2/instance-type`; prices from the sheet
        in use (Exoscale's API has no price list). Types without a known price are left out."""
        from mlops_nocode.providers import exoscale_api

        zone = _cloud.settings(ExoscaleSettings, "EXOSCALE_").exoscale_zone
        types = exoscale_api.list_instance_types(env, zone)
        old = load_sheet(NAME)
        known = {o.id: o for o in old.offers}
        offers = []
        for t in types:
            type_id = f"{t.get('family')}.{t.get('size')}"
            ref = known.get(type_id)
            if ref is None or t.get("authorized") is False:
                continue
            for z in t.get("zones") or [ref.region]:
                offers.append(
                    Offer(
                        provider=NAME,
                        id=type_id,
                        vcpus=float(t.get("cpus") or ref.vcpus),
                        memory_gib=round(float(t.get("memory") or 0) / 2**30, 2) or ref.memory_gib,
                        price_per_hour=ref.price_per_hour,
                        region=str(z),
                        gpu_type=ref.gpu_type if t.get("gpus") else "",
                        gpu_count=int(t.get("gpus") or 0),
                        gpu_memory_gib=ref.gpu_memory_gib if t.get("gpus") else 0.0,
                        currency=old.currency,
                    )
                )
        if not offers:
            raise ProviderError(
                "the Exoscale API listed no instance type with a known price",
                f"Exoscale API GET /v2/instance-type ({zone})",
                "check the API key's rights (compute: list instance types); the shipped sheet stays in use",
            )
        today = datetime.date.today().isoformat()
        source = f"Exoscale API v2 GET /v2/instance-type ({zone}) on {today}; prices: {old.source}"
        save_sheet(PriceSheet(NAME, today, source, old.currency, tuple(offers)))
        return offers

    def render(self, deployment: Deployment) -> Bundle:
        conf = _cloud.settings(ExoscaleSettings, "EXOSCALE_")
        opts = deployment.options
        offer = deployment.offer or _chosen(self.offers(), deployment)
        zone = str(opts.get("zone") or offer.region or conf.exoscale_zone)
        plan_text = json.dumps(deployment.plan.to_json(), sort_keys=True, separators=(",", ":"))
        packed = len(plan_text)
        if packed * 1.4 > USER_DATA_PLAN_MAX:  # else its gzip+base64 form surely fits
            packed = len(base64.b64encode(gzip.compress(plan_text.encode("utf-8"))))
        if packed > USER_DATA_PLAN_MAX:
            raise ProviderError(
                f"the plan is too large for Exoscale user-data ({packed} bytes compressed, at most "
                f"{USER_DATA_PLAN_MAX})",
                f"deployment {deployment.name}",
                "split the pipeline into smaller deployments, or shorten large parameter values",
            )
        ssh_key = str(opts.get("ssh_public_key") or "")
        serve_port = int(opts.get("serve_port") or 0)
        name = _cloud.resource_name(deployment)
        module = {
            "source": f"./modules/{NAME}",
            "name": name,
            "zone": zone,
            "instance_type": offer.id,
            "disk_size": int(opts.get("disk_size") or conf.exoscale_disk_gb),
            "template_name": str(opts.get("template") or conf.exoscale_template),
            "ssh_public_key": ssh_key,
            "ssh_cidr": str(opts.get("ssh_cidr") or ""),
            "serve_port": serve_port,
            "labels": {"mlops-run": deployment.run_id[:63], "mlops-deployment": deployment.name},
            "plan_json": plan_text,
            "runner_image": str(opts.get("image") or conf.exoscale_runner_image),
            "pip_spec": conf.exoscale_pip_spec,
            "gpu_driver": offer.gpu_count > 0,
            "runner_env": {"MLOPS_DEPLOYMENT": deployment.name},
        }
        root = {
            "terraform": {
                "required_providers": {NAME: {"source": "exoscale/exoscale", "version": "~> 0.70"}}
            },
            "provider": {NAME: {}},
            "variable": {
                "run_token": {"type": "string", "sensitive": True},
                "secret_env": {"type": "map(string)", "sensitive": True, "default": {}},
                "report_to": {"type": "string", "default": _cloud.report_url()},
            },
            "module": {"runner": {**hcl.value(module), **_REFS}},
            "output": {k: {"value": f"${{module.runner.{k}}}"} for k in ("instance_id", "zone", "public_ip")},
        }
        resources = [
            {"type": "exoscale_security_group", "name": name},
            {"type": "exoscale_compute_instance", "name": name},
        ]
        if ssh_key:
            resources.insert(1, {"type": "exoscale_ssh_key", "name": name})
        if opts.get("ssh_cidr"):
            resources.insert(1, {"type": "exoscale_security_group_rule", "name": f"{name} ssh"})
        if serve_port:
            resources.insert(1, {"type": "exoscale_security_group_rule", "name": f"{name} serve"})
        return Bundle(
            deployment=deployment.name,
            provider=NAME,
            files={"main.tf.json": _cloud.bundle_json(root), **_cloud.module_files(NAME)},
            resources=tuple(resources),
            price_per_hour=offer.price_per_hour,
            hours=_cloud.expected_hours(deployment),
            env=("MLOPS_RUN_TOKEN", "MLOPS_REPORT_TO", "ARTIFACT_STORE_*", *CREDENTIALS),
        )

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        return _cloud.provision(bundle, workdir, env, ("instance_id", "zone"))

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        """Cloud-init starts the Runner at boot; this only checks the instance still exists."""
        _cloud.check_started("Exoscale instance", provisioned, self.status(provisioned, env))

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        from mlops_nocode.providers import exoscale_api

        instance_id = str(provisioned.handle.get("instance_id") or "")
        if not instance_id:
            return "destroyed"
        zone = str(
            provisioned.handle.get("zone") or _cloud.settings(ExoscaleSettings, "EXOSCALE_").exoscale_zone
        )
        instance = exoscale_api.get_instance(env, zone, instance_id)
        if instance is None:
            return "lost"
        return _STATES.get(str(instance.get("state", "")), "pending")

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        _cloud.teardown(provisioned, env)


# egoscale v3 InstanceState values -> Provider.status words
_STATES = {
    "starting": "pending",
    "migrating": "pending",
    "running": "running",
    "stopping": "exited",
    "stopped": "exited",
    "error": "lost",
    "destroying": "destroyed",
    "destroyed": "destroyed",
    "expunging": "destroyed",
}

# References to the root's variables: Terraform expressions, added after escaping (never user text).
_REFS = {
    "run_token": "${var.run_token}",
    "secret_env": "${var.secret_env}",
    "report_to": "${var.report_to}",
}


def _chosen(offers: list[Offer], deployment: Deployment) -> Offer:
    """The offer named by the target options (`instance_type`, `zone`), else the cheapest that fits."""
    wanted = deployment.options.get("instance_type")
    zone = deployment.options.get("zone")
    if wanted:
        for o in offers:
            if o.id == wanted and (not zone or o.region == zone):
                return o
        raise ProviderError(
            f"Exoscale has no instance type {wanted!r}" + (f" in zone {zone!r}" if zone else ""),
            f"deployment {deployment.name} > target.options.instance_type",
            "choose one that `mlops targets` lists for exoscale",
        )
    pool = [o for o in offers if not zone or o.region == zone]
    return _cloud.cheapest_fit(NAME, pool, deployment)


PROVIDER = ExoscaleProvider()
