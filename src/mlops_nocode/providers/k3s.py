"""The `k3s` provider: runs a deployment's steps as a Kubernetes Job on the user's own K3s (or any
Kubernetes) cluster, applied with Terraform's hashicorp/kubernetes provider against a kubeconfig.

A K3s cluster is the user's own: its offers are the node sizes the user declares in the price sheet
(`providers/prices/k3s.json`, copied to MLOPS_HOME/prices/k3s.json by `mlops targets refresh k3s`,
which reads the nodes' allocatable CPU, memory and GPUs from the cluster). The shipped sheet is an
example at price 0; put the hourly cost of the machines the cluster runs on there to compare it with
the clouds.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
from mlops_nocode.providers.k3s_api import connect, kubeconfig_path, quantity
from mlops_nocode.providers.k3s_render import dns_label
from mlops_nocode.providers.k3s_render import render as render_bundle
from mlops_nocode.providers.pricing import PriceSheet, load_sheet, save_sheet
from mlops_nocode.runtime.executors import runtimes_for

NAME = "k3s"
_INSTANCE_LABEL = "node.kubernetes.io/instance-type"
_GPU = "nvidia.com/gpu"


class K3sProvider:
    """See the module docstring."""

    name = NAME
    features = Features(
        runtimes=runtimes_for("k3s"),
        unsupported={
            "terraform": "the Runner image carries no terraform: run terraform steps on the local target",
            "ansible": "the Runner image carries no ansible: run ansible steps on the local target",
            "litellm": "model routes and their keys live with the gateway's MLOPS_HOME, which a remote "
            "Runner cannot read: run litellm steps on the local target",
            "serve": "the K3s Runner does not start services: `mlops serve k8s SPEC` renders their "
            "Deployment + Service (render-only); run serve steps on the local target",
            "gpu-types": "GPUs are asked for as nvidia.com/gpu only; a GPU type is chosen through the "
            "offer's node selector (label the nodes, declare them in the price sheet)",
        },
        gpus=True,
        provisions=True,
        iac="terraform",
    )

    def state(self, env: Mapping[str, str]) -> TargetState:
        """Present: a kubeconfig (K3S_KUBECONFIG, KUBECONFIG, ~/.kube/config or K3s's own) and
        `terraform` or `tofu`. Reads files' existence only."""
        from mlops_nocode.iac.terraform import TerraformRunner

        binary = TerraformRunner.find_binary(env)
        cfg = kubeconfig_path(env)
        missing = [] if cfg else ["K3S_KUBECONFIG or KUBECONFIG (a kubeconfig file of the cluster)"]
        missing += [] if binary else ["terraform or tofu (install Terraform >= 1.11 or OpenTofu)"]
        notes = [f"kubeconfig: {cfg}"] if cfg else []
        notes.append("offers are the node sizes declared in the k3s price sheet (your own cluster)")
        return TargetState(
            NAME,
            credentials=cfg is not None,
            missing=tuple(missing),
            tools={"terraform": binary},
            notes=tuple(notes),
        )

    def offers(self) -> list[Offer]:
        return list(load_sheet(NAME).offers)

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        """Read the nodes' allocatable sizes (GET /api/v1/nodes); one offer per node size, keeping the
        price the current sheet gives an offer of the same id (0 for a new one)."""
        old = load_sheet(NAME)
        prices = {o.id: o.price_per_hour for o in old.offers}
        with connect(env) as api:
            data = api.get("/api/v1/nodes") or {}
            source = f"{api.access.server}/api/v1/nodes"
        offers = offers_from_nodes(data, prices, old.currency)
        sheet = PriceSheet(NAME, datetime.date.today().isoformat(), source, old.currency, tuple(offers))
        save_sheet(sheet)
        return offers

    def render(self, deployment: Deployment) -> Bundle:
        return render_bundle(deployment)

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        """Write the bundle in `workdir` and apply it (the Job starts the Runner at once)."""
        from mlops_nocode.iac.terraform import TerraformRunner

        tf_env = terraform_env(bundle, env)
        if TerraformRunner.find_binary(env) is None:
            raise ProviderError(
                "neither terraform nor tofu is installed",
                "PATH",
                "install Terraform >= 1.11 (or OpenTofu) or set TERRAFORM_BINARY; `mlops plan` still renders",
            )
        bundle.write(workdir)
        runner = TerraformRunner(workdir, env=tf_env)
        runner.init()
        out = runner.apply()
        handle = {k: _output(out, k) for k in ("namespace", "job", "service")}
        return Provisioned(bundle.deployment, NAME, bundle.resources, str(workdir), handle)

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        """The Job started the Runner when it was applied: check that it exists."""
        state = self.status(provisioned, env)
        if state in ("lost", "destroyed"):
            raise ProviderError(
                f"the Runner's Job is {state}",
                f"namespace {provisioned.handle.get('namespace')}",
                "look at the cluster's events (kubectl get events -n NAMESPACE) and deploy again",
            )

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        ns, job = provisioned.handle.get("namespace"), provisioned.handle.get("job") or "runner"
        if not ns:
            return "destroyed"
        if not (
            isinstance(ns, str) and dns_label(ns) == ns and isinstance(job, str) and dns_label(job) == job
        ):
            raise ProviderError(
                f"the recorded namespace {ns!r} or job {job!r} is not a Kubernetes name",
                f"deployment {provisioned.deployment} (k3s) > handle",
                "destroy it with `mlops destroy RUN` (Terraform's state knows what exists)",
            )
        with connect(env) as api:
            found = api.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{job}")
            if found is None:
                space = api.get(f"/api/v1/namespaces/{ns}")
                gone = space is None or (space.get("status") or {}).get("phase") == "Terminating"
                return "destroyed" if gone else "lost"
        return job_state(found)

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        """`terraform destroy` in the deployment's working directory (safe to repeat)."""
        from mlops_nocode.iac.terraform import TerraformRunner

        if not provisioned.workdir or not Path(provisioned.workdir).is_dir():
            return
        TerraformRunner(Path(provisioned.workdir), env=terraform_env(None, env)).destroy()


def _output(out: Mapping[str, Any], key: str) -> Any:
    v = out.get(key)
    return v.get("value") if isinstance(v, Mapping) else v


def terraform_env(bundle: Bundle | None, env: Mapping[str, str]) -> dict[str, str]:
    """What Terraform gets: the kubeconfig's path (KUBE_CONFIG_PATH), the run token and the step
    secrets as TF_VAR_* (the only way secret values reach it), and PATH/HOME to run at all."""
    cfg = kubeconfig_path(env)
    if cfg is None:
        raise ProviderError(
            "no kubeconfig found",
            "environment (K3S_KUBECONFIG, KUBECONFIG)",
            "set K3S_KUBECONFIG or KUBECONFIG to a kubeconfig file of the cluster",
        )
    out = {k: env[k] for k in ("PATH", "HOME", "TERRAFORM_BINARY", "TF_PLUGIN_CACHE_DIR") if k in env}
    out["KUBE_CONFIG_PATH"] = str(cfg)
    out["TF_VAR_run_token"] = env.get("MLOPS_RUN_TOKEN", "")
    if bundle is not None and "TF_VAR_step_secrets" in bundle.env:
        names = json.loads(bundle.files["main.tf.json"])["module"]["run"]["secret_names"]
        lost = [n for n in names if n not in env]
        if lost:
            raise ProviderError(
                f"step secrets {', '.join(lost)} are not set",
                "environment",
                "set them in the environment of the gateway or the CLI",
            )
        out["TF_VAR_step_secrets"] = json.dumps({n: env[n] for n in names})
    return out


def job_state(job: Mapping[str, Any]) -> str:
    """A batch/v1 Job's status as "pending", "running" or "exited"."""
    st = job.get("status") or {}
    for cond in st.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return "exited"
    if st.get("succeeded") or (st.get("failed") and not st.get("active")):
        return "exited"
    return "running" if st.get("active") and (st.get("ready") or 0) > 0 else "pending"


def offers_from_nodes(data: Mapping[str, Any], prices: Mapping[str, float], currency: str) -> list[Offer]:
    """One offer per distinct node size in a `GET /api/v1/nodes` answer (schedulable nodes only)."""
    groups: dict[str, dict[str, Any]] = {}
    for node in data.get("items") or []:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        meta, alloc = node.get("metadata") or {}, (node.get("status") or {}).get("allocatable") or {}
        labels = meta.get("labels") or {}
        try:
            cpu, mem = quantity(alloc.get("cpu", "0")), quantity(alloc.get("memory", "0")) / 2**30
            gpus = int(quantity(alloc.get(_GPU, "0")))
            gpu_mem = quantity(labels.get("nvidia.com/gpu.memory", "0")) / 1024 if gpus else 0.0
        except ValueError:
            continue
        gpu_type = _gpu_name(labels.get("nvidia.com/gpu.product", "")) if gpus else ""
        kind = labels.get(_INSTANCE_LABEL) or f"{cpu:g}cpu-{mem:.0f}gib" + (
            f"-{gpus}x{gpu_type or 'gpu'}" if gpus else ""
        )
        offer_id = re.sub(r"[^A-Za-z0-9._-]+", "-", kind)[:63]
        region = labels.get("topology.kubernetes.io/region") or labels.get("topology.kubernetes.io/zone", "")
        g = groups.setdefault(
            offer_id,
            {
                "cpu": cpu,
                "mem": mem,
                "gpus": gpus,
                "gpu_type": gpu_type,
                "gpu_mem": gpu_mem,
                "region": region,
                "nodes": 0,
                "by_label": _INSTANCE_LABEL in labels,
            },
        )
        g["nodes"] += 1
        g["cpu"], g["mem"] = min(g["cpu"], cpu), min(g["mem"], mem)
    return [
        Offer(
            provider=NAME,
            id=oid,
            vcpus=g["cpu"],
            memory_gib=round(g["mem"], 2),
            price_per_hour=float(prices.get(oid, 0.0)),
            region=str(g["region"]),
            gpu_type=g["gpu_type"],
            gpu_count=g["gpus"],
            gpu_memory_gib=round(g["gpu_mem"], 1),
            currency=currency,
            extra={
                "nodes": g["nodes"],
                **({"node_selector": {_INSTANCE_LABEL: oid}} if g["by_label"] else {}),
            },
        )
        for oid, g in sorted(groups.items())
    ]


def _gpu_name(product: str) -> str:
    """NVIDIA GPU feature discovery's product label ("NVIDIA-A100-SXM4-80GB") as a short name."""
    name = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
    return name.replace("GeForce-", "").upper()


PROVIDER = K3sProvider()
