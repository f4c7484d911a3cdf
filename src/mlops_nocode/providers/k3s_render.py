"""Rendering one deployment for a K3s (Kubernetes) cluster: a Terraform root module calling the shipped
`k3s` module, the same Kubernetes objects as YAML manifests for review, the resources and the cost.

Pure: creates nothing and reads no secret value. Secrets (the run token, the step secrets, the
kubeconfig) reach Terraform at provision time through the environment only (`TF_VAR_run_token`,
`TF_VAR_step_secrets`, `KUBE_CONFIG_PATH`).

The bundle is self-contained: it carries a copy of the shipped module under `modules/k3s/` and calls it
with the relative source `./modules/k3s`, so the folder can be reviewed, moved and applied anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from mlops_nocode.iac import hcl
from mlops_nocode.providers import k3s_steps
from mlops_nocode.providers.base import Bundle, Deployment, ProviderError
from mlops_nocode.providers.k3s_objects import manifests_yaml
from mlops_nocode.spec.values import memory_bytes

MODULE = "k3s"
PROVIDER_SOURCE, PROVIDER_VERSION = "hashicorp/kubernetes", "~> 3.2"
PLAN_FILE = '${file("${path.module}/plan.json")}'  # a constant: no user string in this template
MAX_PLAN_BYTES = 1_000_000  # a ConfigMap holds at most 1 MiB
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,252}$")
_RESERVED_ENV = frozenset({"MLOPS_RUN_TOKEN", "MLOPS_HOME"})
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


def shipped_modules() -> Path:
    """The folder of the shipped Terraform modules: inside the installed package (wheel), else the
    repository's deploy/terraform/modules (editable install)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_deploy" / "terraform" / "modules"
    return packaged if packaged.is_dir() else here.parent.parent / "deploy" / "terraform" / "modules"


@functools.cache
def module_files(module: str) -> dict[str, str]:
    """The shipped module's files as bundle entries (`modules/<module>/<file>` -> text); read once."""
    folder = shipped_modules() / module
    return {
        f"modules/{module}/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(folder.iterdir())
        if p.suffix in (".tf", ".md")
    }


def dns_label(text: str) -> str:
    """`text` as a DNS-1123 label: unchanged when it is one, else lowercased with runs of other
    characters turned into '-', cut, and suffixed with a hash of the original (deterministic, and two
    different inputs never meet on the same label by sanitising alone)."""
    if _DNS_LABEL.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:54].strip("-")
    return f"{base}-{digest}" if base else f"x-{digest}"


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)."""
    if _LABEL_VALUE.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:54].strip("-_.")
    return f"{base}-{digest}" if base else digest


def _fail(deployment: Deployment, what: str, where: str, fix: str) -> ProviderError:
    return ProviderError(what, f"deployment {deployment.name} (k3s) > {where}", fix)


def _sizes(d: Deployment) -> tuple[str, str, int]:
    """CPU, memory and GPU count of the Runner's container: the largest any of its steps asks for
    (container steps run in pods of their own, which ask for theirs: the Runner must not hold them)."""
    cpu, mem, mem_text, gpu = 0.0, 0, "1Gi", 0
    for s in d.steps:
        res = s.resources
        try:
            c, g = float(res.get("cpu", 1)), int(res.get("gpu", 0))
            m = memory_bytes(str(res.get("memory", "1Gi")))
        except (TypeError, ValueError) as e:
            raise _fail(
                d,
                f"step {s.id} has unusable resources: {e}",
                f"{s.source} > resources",
                "give cpu as a number, memory like 512Mi or 2Gi, gpu as an integer",
            ) from None
        if c <= 0 or g < 0:
            raise _fail(
                d,
                f"step {s.id} asks for {c:g} CPUs and {g} GPUs",
                f"{s.source} > resources",
                "ask for more than 0 CPUs and 0 or more GPUs",
            )
        if s.runtime == "container":
            continue
        cpu, gpu = max(cpu, c), max(gpu, g)
        if m > mem:
            mem, mem_text = m, str(res.get("memory", "1Gi"))
    return f"{cpu or 1:g}", mem_text, gpu


def _secret_names(d: Deployment) -> list[str]:
    names = sorted({n for s in d.steps for n in s.secrets})
    for n in names:
        if not _ENV_NAME.match(n) or n in _RESERVED_ENV:
            raise _fail(
                d,
                f"secret name {n!r} cannot be an environment variable of the Runner",
                "steps > secrets",
                "name secrets with letters, digits and '_' (not MLOPS_RUN_TOKEN or MLOPS_HOME)",
            )
    return names


def _default_image(d: Deployment, gpu: int) -> str:
    from mlops_nocode.settings import Settings

    try:
        s = Settings()
    except ValueError as e:  # pydantic's ValidationError and SettingsError
        raise _fail(d, f"the settings cannot be read: {e}", "settings (RUNNER_IMAGE, RUNNER_IMAGE_CUDA)",
                    "fix the setting named in the message") from None  # fmt: skip
    return s.runner_image_cuda if gpu else s.runner_image


def _options(d: Deployment, gpu: int) -> dict[str, Any]:
    o = d.options
    offer_extra = d.offer.extra if d.offer else {}
    image = o.get("image") or _default_image(d, gpu)
    pull = o.get("image_pull_policy", "IfNotPresent")
    port = o.get("port", 0) or 0
    selector = {**dict(offer_extra.get("node_selector") or {}), **dict(o.get("node_selector") or {})}
    for k, v in selector.items():
        if not (isinstance(k, str) and _LABEL_KEY.match(k) and isinstance(v, str) and _LABEL_VALUE.match(v)):
            raise _fail(
                d,
                f"node selector {k!r}: {v!r} is not a Kubernetes label",
                "target.options.node_selector (or the offer's extra.node_selector)",
                "use label keys like example.com/name and values of at most 63 letters, digits, '-_.'",
            )
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise _fail(
            d,
            f"image {image!r} is not an image reference",
            "target.options.image",
            "give an image such as registry.example/runner:1.0",
        )
    if pull not in _PULL_POLICIES:
        raise _fail(
            d,
            f"image_pull_policy {pull!r} is unknown",
            "target.options.image_pull_policy",
            f"use one of {', '.join(_PULL_POLICIES)}",
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise _fail(
            d,
            f"port {port!r} is not a port number",
            "target.options.port",
            "give the served model's port, 1 to 65535",
        )
    report_to = o.get("report_to", "")
    if not isinstance(report_to, str) or (report_to and not re.match(r"^https?://\S+$", report_to)):
        raise _fail(
            d,
            f"report_to {report_to!r} is not an http(s) URL",
            "target.options.report_to",
            "give the gateway's URL, e.g. https://mlops.example:8000",
        )
    return {
        "image": image,
        "pull": pull,
        "port": port,
        "node_selector": {str(k): str(v) for k, v in selector.items()},
        "report_to": report_to,
    }


def render(d: Deployment) -> Bundle:
    """The bundle of one deployment (see the module docstring)."""
    cpu, memory, gpu = _sizes(d)
    secrets = _secret_names(d)
    opt = _options(d, gpu)
    plan_text = d.plan.to_text()
    if len(plan_text.encode()) > MAX_PLAN_BYTES:
        raise _fail(
            d,
            f"the plan is {len(plan_text.encode())} bytes; a ConfigMap holds at most 1 MiB",
            "plan",
            "split the run into smaller pipelines",
        )
    namespace = dns_label(f"mlops-{d.run_id}-{d.name}")
    labels = {
        "app.kubernetes.io/managed-by": "mlops-nocode",
        "app.kubernetes.io/name": "mlops-runner",
        "mlops-nocode/run": label_value(d.run_id),
        "mlops-nocode/deployment": label_value(d.name),
    }
    timeouts = [s.timeout for s in d.steps]
    hours = sum(float(t) for t in timeouts if t) / 3600 if timeouts and all(timeouts) else None
    deadline = int(sum(float(t) for t in timeouts if t)) + 600 if hours is not None else None
    args = {
        "namespace": namespace,
        "deployment": d.name,
        "run_id": d.run_id,
        "labels": labels,
        "image": opt["image"],
        "image_pull_policy": opt["pull"],
        "report_to": opt["report_to"],
        "cpu": cpu,
        "memory": memory,
        "gpu": gpu,
        "node_selector": opt["node_selector"],
        "active_deadline_seconds": deadline,
        "service_port": opt["port"],
        "secret_names": secrets,
    }
    if k3s_steps.needs_step_jobs(d):
        k3s_steps.check_steps(d)
        args.update(step_jobs=True, **k3s_steps.volume_options(d))
    module_args: dict[str, Any] = {k: hcl.value(v) for k, v in args.items() if v is not None}
    module_args["report_to"] = hcl.ref("var.report_to")
    module_args["plan_json"] = PLAN_FILE
    module_args["run_token"] = hcl.ref("var.run_token")
    if secrets:
        module_args["step_secrets"] = hcl.ref("var.step_secrets")
    root = {
        "//": f"Generated by mlops-nocode for run {d.run_id}, deployment {d.name}. Secrets come from the "
        "environment (TF_VAR_run_token, TF_VAR_step_secrets) and the cluster from KUBE_CONFIG_PATH.",
        "terraform": {
            "required_version": ">= 1.11",
            "required_providers": {"kubernetes": {"source": PROVIDER_SOURCE, "version": PROVIDER_VERSION}},
        },
        "provider": {"kubernetes": {}},
        "variable": {
            "run_token": {"type": "string", "sensitive": True, "ephemeral": True},
            "step_secrets": {"type": "map(string)", "default": {}, "sensitive": True, "ephemeral": True},
            "report_to": {"type": "string", "default": opt["report_to"]},  # literal: no template
        },
        "module": {"run": {"source": f"./modules/{MODULE}", **module_args}},
        "output": {k: {"value": hcl.ref(f"module.run.{k}")} for k in ("namespace", "job", "service")},
    }
    files = {
        "main.tf.json": hcl.dumps(root),
        "plan.json": plan_text,
        "manifests/k3s.yaml": manifests_yaml({**args, "plan_json": plan_text}),
    }
    files.update(module_files(MODULE))
    if any(s.runtime == "litellm" for s in d.steps) or d.options.get("llm_proxy") is True:
        files["manifests/litellm.yaml"] = _litellm_manifests(d, namespace)
    resources = [
        ("kubernetes_namespace_v1", namespace),
        ("kubernetes_config_map_v1", "plan"),
        ("kubernetes_secret_v1", "run-token"),
    ]
    resources += [("kubernetes_secret_v1", "step-secrets")] if secrets else []
    resources += k3s_steps.RESOURCES if args.get("step_jobs") else []
    resources += [("kubernetes_job_v1", "runner"), ("kubernetes_network_policy_v1", "runner")]
    resources += [("kubernetes_service_v1", "serve")] if opt["port"] else []
    env = ["KUBE_CONFIG_PATH", "TF_VAR_run_token"] + (["TF_VAR_step_secrets"] if secrets else [])
    return Bundle(
        deployment=d.name,
        provider="k3s",
        files=files,
        resources=tuple({"type": t, "name": n} for t, n in resources),
        price_per_hour=d.offer.price_per_hour if d.offer else 0.0,
        hours=None if hours is None else round(hours, 4),
        env=tuple(env),
    )


def _litellm_manifests(d: Deployment, namespace: str) -> str:
    """The LiteLLM proxy's manifests for a deployment with litellm steps (or `llm_proxy: true`), from
    MLOPS_HOME's model routes (kubectl apply -f; keys are Secret references only)."""
    from mlops_nocode.catalogue.home import mlops_home
    from mlops_nocode.integrations.litellm import k8s as litellm_k8s
    from mlops_nocode.integrations.litellm.routes import RouteError, load_routes

    try:
        routes = load_routes(mlops_home())
    except RouteError as e:
        raise _fail(
            d, str(e), "MLOPS_HOME/llm/routes.yaml", "fix the routes: `mlops llm routes list`"
        ) from None
    return litellm_k8s.manifests_yaml(routes, namespace)
