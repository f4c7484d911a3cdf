"""Container steps of a k3s deployment: each attempt runs as a Kubernetes Job of its own, created by the
deployment's Runner (itself a Job's pod) through the API with its service account.

Inputs and outputs travel through the Runner's work volume, a PersistentVolumeClaim the k3s module
renders for deployments with container steps: the step's pod mounts the same claim with `subPath`s, its
inputs read-only at /mlops/inputs/<name> and its output folder at /mlops/out (the local contract), and is
placed on the Runner's node (a ReadWriteOnce volume is shared by pods of one node). The Runner collects
the outputs from its own folder when the pod ends, as for any command or container step.

The Job is built as data (JSON to the API, no YAML or HCL text): every user string is a JSON string, and
`$` is doubled so that Kubernetes' `$(VAR)` expansion leaves user text as written. Secrets never enter
the Job: the container reads them from the deployment's `step-secrets` Secret (`secretKeyRef`), and an
env value that mixes text and secrets refers to them as `$(NAME)`. Whatever ends the attempt (exit,
cancel, timeout, an error), the Job is deleted with its pods (propagationPolicy Foreground); the Job is
also owned by the Runner's pod, so the cluster's garbage collector removes it if the Runner dies.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.runtime.attempt import Attempt, StepFailure, output_rel
from mlops_nocode.runtime.executors.jobs import StepThread
from mlops_nocode.runtime.secrets import SECRET_RE
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter
from mlops_nocode.spec.sections import ContainerRuntime

INPUTS, OUT = "/mlops/inputs", "/mlops/out"
CONTAINER = "step"
SECRET_OBJECT = "step-secrets"
POD_ENV = ("MLOPS_K8S_NAMESPACE", "MLOPS_K8S_POD", "MLOPS_K8S_POD_UID", "MLOPS_K8S_NODE")
"""What the k3s module gives the Runner's container through the downward API."""
_PULL = {"never": "Never", "missing": "IfNotPresent", "always": "Always"}
_FAILED_WAITING = {
    "ErrImagePull": "the image cannot be pulled",
    "ImagePullBackOff": "the image cannot be pulled",
    "InvalidImageName": "the image reference is invalid",
    "ErrImageNeverPull": "the image is not on the node and container.pull is never",
    "CreateContainerConfigError": "the container cannot be configured",
    "CreateContainerError": "the container cannot be created",
}


class KubeStepSettings(BaseSettings):
    """How the Runner in a k3s pod reaches the API (the defaults are what Kubernetes gives every pod)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    k8s_api_url: str = Field(default="", description="API server; empty: KUBERNETES_SERVICE_HOST/PORT")
    k8s_serviceaccount_dir: Path = Field(
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        description="folder of the service account's token, ca.crt",
    )
    k8s_poll_s: float = Field(default=1.0, gt=0, le=60, description="seconds between status reads")
    k8s_step_ttl_s: int = Field(
        default=3600, ge=0, description="ttlSecondsAfterFinished of step Jobs (if the Runner cannot delete)"
    )


@dataclass(frozen=True, slots=True)
class RunnerPod:
    """Where the Runner runs: its pod (owner of the step Jobs), node, and the shared work volume."""

    namespace: str
    name: str
    uid: str
    node: str
    claim: str
    root: Path  # where the claim is mounted in the Runner's pod


def runner_pod(env: Mapping[str, str]) -> RunnerPod:
    """The Runner's pod from its environment; StepFailure naming what the deployment lacks."""
    missing = [n for n in (*POD_ENV, "MLOPS_K8S_CLAIM", "MLOPS_K8S_SHARED") if not env.get(n)]
    if missing:
        raise StepFailure(
            f"a container step on a k3s target needs the Runner's pod to be rendered for step Jobs "
            f"({', '.join(missing)} not set): deploy it with `mlops run` or the gateway (the k3s module "
            "then gives the Runner a service account and a work volume), or place the step on local"
        )
    return RunnerPod(
        env["MLOPS_K8S_NAMESPACE"],
        env["MLOPS_K8S_POD"],
        env["MLOPS_K8S_POD_UID"],
        env["MLOPS_K8S_NODE"],
        env["MLOPS_K8S_CLAIM"],
        Path(env["MLOPS_K8S_SHARED"]),
    )


def job_name(step_id: str, attempt: int) -> str:
    """`step-<id>-<attempt>` as a DNS label of at most 52 characters (a Job's pods add a suffix)."""
    text = f"step-{step_id}-{attempt}"
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if base == text and len(base) <= 52:
        return base
    return f"{base[:43].strip('-')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _label(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:63].strip("-_.")
    return value or "x"


def _literal(text: str) -> str:
    """User text as Kubernetes passes it on: `$` doubled so that `$(VAR)` is never expanded."""
    return text.replace("$", "$$")


def _template(text: str, a: Attempt, cfg: ContainerRuntime, *, where: str) -> str:
    """`text` with its expressions replaced (paths inside the container), escaped for Kubernetes. In
    env values, secrets (and parameters holding secret placeholders) become `$(NAME)` references."""
    in_env = where.startswith("container.env.")
    out, last = [], 0
    for m in EXPR_RE.finditer(text):
        out.append(_literal(text[last : m.start()]))
        last = m.end()
        ns, name, flt = m[1], m[2], m[3]
        if ns == "secrets":
            if not in_env:
                raise StepFailure(f"{where}: secrets go into the container through env only")
            if flt:
                raise StepFailure(f"{where}: a secret cannot go through a filter on a k3s target")
            out.append(f"$({name})")
        elif ns == "params":
            v = a.step.params.get(name, "")
            v = v if isinstance(v, str) else json.dumps(v)
            if in_env and SECRET_RE.search(v):  # as locally: filled in env only
                if flt:
                    raise StepFailure(f"{where}: a secret cannot go through a filter on a k3s target")
                out.append(_secret_refs(v))
            else:
                out.append(_literal(apply_filter(v, flt)))
        elif ns == "inputs":
            out.append(_literal(apply_filter(f"{INPUTS}/{name}" if name in a.inputs else "", flt)))
        elif ns == "outputs":
            out.append(_literal(apply_filter(f"{OUT}/{output_rel(name, cfg.outputs.get(name, name))}", flt)))
        else:
            out.append(_literal(m[0]))
    out.append(_literal(text[last:]))
    return "".join(out)


def _secret_refs(value: str) -> str:
    parts, last = [], 0
    for m in SECRET_RE.finditer(value):
        parts += [_literal(value[last : m.start()]), f"$({m[1]})"]
        last = m.end()
    return "".join([*parts, _literal(value[last:])])


def _sub_path(path: Path, pod: RunnerPod, what: str) -> str:
    real = os.path.realpath(path)
    root = os.path.realpath(pod.root)
    rel = os.path.relpath(real, root)
    if rel == "." or rel.startswith(".."):
        raise StepFailure(
            f"{what} ({real}) is not on the Runner's work volume ({root}): the step's pod cannot see it; "
            "keep MLOPS_HOME under the work volume (the k3s module's default)"
        )
    return rel


def _sizes(res: Mapping[str, Any]) -> dict[str, str]:
    sizes = {"cpu": f"{float(res.get('cpu', 1) or 1):g}", "memory": str(res.get("memory", "1Gi") or "1Gi")}
    gpus = int(res.get("gpu", 0) or 0)
    if gpus:
        sizes["nvidia.com/gpu"] = str(gpus)
    return sizes


def step_job(
    a: Attempt,
    run_id: str,
    pod: RunnerPod,
    *,
    ttl: int = 3600,
    uid: int | None = None,
    gid: int | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job that runs attempt `a` (see the module docstring); StepFailure when it cannot."""
    from mlops_nocode.runtime.executors.container import section

    cfg = section(a.step)
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    mounts = [
        {
            "name": "work",
            "mountPath": f"{INPUTS}/{name}",
            "subPath": _sub_path(Path(str(rec["path"])), pod, f"input {name!r}"),
            "readOnly": True,
        }
        for name, rec in sorted(a.inputs.items())
        if rec.get("path")
    ]
    mounts.append(
        {"name": "work", "mountPath": OUT, "subPath": _sub_path(a.out_dir, pod, "the output folder")}
    )
    env: list[dict[str, Any]] = [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": SECRET_OBJECT, "key": n}}}
        for n in sorted(a.secrets)
    ]
    env += [
        {"name": k, "value": _template(v, a, cfg, where=f"container.env.{k}")}
        for k, v in cfg.env.items()
        if k not in a.secrets
    ]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": cfg.image,
        "imagePullPolicy": _PULL[cfg.pull],
        "args": [_template(x, a, cfg, where="container.args") for x in cfg.args],
        "env": env,
        "volumeMounts": mounts,
        "resources": {"requests": _sizes(a.step.resources), "limits": _sizes(a.step.resources)},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if cfg.command:
        container["command"] = [_template(x, a, cfg, where="container.command") for x in cfg.command]
    if cfg.workdir:
        container["workingDir"] = cfg.workdir
    if cfg.ports:
        container["ports"] = [{"containerPort": p} for p in cfg.ports]
    labels = {
        "app.kubernetes.io/managed-by": "mlops-nocode",
        "mlops-nocode/role": "step",
        "mlops-nocode/run": _label(run_id),
        "mlops-nocode/step": _label(a.step.id),
        "mlops-nocode/network": cfg.network,
    }
    node_affinity = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pod.node]}]}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": cfg.network == "host",
        "securityContext": {
            "runAsNonRoot": uid != 0,
            "runAsUser": uid,
            "runAsGroup": gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [node_affinity]}
            }
        },
        "containers": [container],
        "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": pod.claim}}],
    }
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,  # the Runner retries steps itself
        "ttlSecondsAfterFinished": ttl,
        "template": {"metadata": {"labels": labels}, "spec": spec},
    }
    if a.step.timeout:
        job_spec["activeDeadlineSeconds"] = math.ceil(float(a.step.timeout)) + 60
    owner = {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid, "controller": False}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(a.step.id, a.number),
            "namespace": pod.namespace,
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": job_spec,
    }


def run_step_job(job: StepThread, run_id: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Run attempt `job.a` as a Kubernetes Job to its end (see the module docstring); the outputs are
    the files its container left in the output folder (collected by the Runner)."""
    from mlops_nocode.providers.base import ProviderError
    from mlops_nocode.providers.k3s_api import KubeApi, in_cluster_access

    conf = KubeStepSettings()
    pod = runner_pod(env)
    manifest = step_job(job.a, run_id, pod, ttl=conf.k8s_step_ttl_s)
    name, ns = manifest["metadata"]["name"], pod.namespace
    try:
        api = KubeApi(in_cluster_access(env, conf.k8s_serviceaccount_dir, conf.k8s_api_url))
    except ProviderError as e:
        raise StepFailure(f"{e.what} ({e.where}): {e.fix}") from None
    jobs = f"/apis/batch/v1/namespaces/{ns}/jobs"
    follower: _LogFollower | None = None
    created = False
    try:
        c = manifest["spec"]["template"]["spec"]["containers"][0]
        job.log(f"kubernetes: Job {ns}/{name}: {json.dumps([c['image'], *c.get('command', []), *c['args']])}")
        created = True  # before: a POST that fails on the way back may still have created it
        api.send("POST", jobs, manifest)
        while True:
            job.wait(conf.k8s_poll_s)
            pods = (
                api.send("GET", f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": f"job-name={name}"})
                or {}
            )
            items = pods.get("items") or []
            state, pod_name = _container_state(items)
            if pod_name and follower is None and ("running" in state or "terminated" in state):
                follower = _LogFollower(api, ns, pod_name, job)
            if "terminated" in state:
                end = state["terminated"]
                if follower is not None:
                    follower.join(10.0)
                return _outcome(end, c["image"], c["resources"]["limits"].get("memory", ""))
            waiting = (state.get("waiting") or {}).get("reason", "")
            if waiting in _FAILED_WAITING:
                msg = " ".join(str((state.get("waiting") or {}).get("message", "")).split())[:300]
                raise StepFailure(f"{_FAILED_WAITING[waiting]} ({waiting}: {msg}) for image {c['image']}")
            found = api.send("GET", f"{jobs}/{name}")
            if found is None:
                raise StepFailure(f"the step's Job {ns}/{name} was deleted by someone else")
            for cond in (found.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Failed" and cond.get("status") == "True" and not items:
                    raise StepFailure(
                        f"the step's Job failed: {cond.get('reason')}: {cond.get('message', '')}"
                    )
    except ProviderError as e:
        raise StepFailure(f"{e.what} ({e.where}): {e.fix}") from None
    finally:
        if created:
            try:
                api.send(
                    "DELETE",
                    f"{jobs}/{name}",
                    {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"},
                )
                job.log(f"kubernetes: Job {ns}/{name} deleted")
            except ProviderError as e:
                job.log(
                    f"kubernetes: cannot delete Job {ns}/{name}: {e.what} "
                    "(its ttl, or the namespace's removal, will)"
                )
        if follower is not None:
            follower.join(5.0)
        api.close()


def _container_state(pods: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The step container's state (`{"running": ...}`, `{"terminated": ...}`...) in the newest pod."""
    for p in reversed(pods):
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == CONTAINER:
                return dict(cs.get("state") or {}), str((p.get("metadata") or {}).get("name", ""))
    return {}, ""


def _outcome(end: Mapping[str, Any], image: str, memory: str) -> dict[str, Any]:
    code, reason = int(end.get("exitCode", 1)), str(end.get("reason", ""))
    if code == 0:
        return {}
    message = " ".join(str(end.get("message", "")).split())[:300]
    if reason == "OOMKilled":
        raise StepFailure(f"the container ran out of memory (limit {memory}): raise resources.memory")
    if reason in ("StartError", "ContainerCannotRun") or code in (126, 127, 128):
        raise StepFailure(
            f"the container's command cannot be run in image {image} (exit code {code}"
            f"{': ' + message if message else ''}): fix container.command or the image"
        )
    raise StepFailure(f"the container exited with code {code} (see the step's log)")


class _LogFollower:
    """Follows the step container's log (`follow=true`) into the step's log, in a thread."""

    def __init__(self, api: Any, ns: str, pod: str, job: StepThread) -> None:
        self.path = f"/api/v1/namespaces/{ns}/pods/{pod}/log"
        self.api, self.job = api, job
        self.thread = threading.Thread(target=self._run, name=f"log {pod}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            params = {"container": CONTAINER, "follow": "true"}
            with (
                self.api.lines(self.path, params) as lines,
                open(self.job.a.log, "a", encoding="utf-8", errors="replace") as f,
            ):
                for line in lines:
                    f.write(line + "\n")
                    f.flush()
        except Exception as e:  # the log is a convenience: the step's outcome does not depend on it
            self.job.log(f"kubernetes: the container's log stopped: {type(e).__name__}")

    def join(self, seconds: float) -> None:
        self.thread.join(seconds)
