"""Kubernetes objects for a serve step (`runtime: serve`) on a K3s cluster: a ConfigMap holding the
service's payload (no secret values), a Deployment running the same service process as on this machine
(`python -m mlops_nocode.runtime.servehost --payload ...`, listening on 0.0.0.0:8000 in its pod) with
readiness and liveness probes on the section's health path, the step's resources and its secrets from a
Secret, and a ClusterIP Service in front of it.

Render-only: the K3s Runner does not start serve steps yet (placement keeps them on `local`); `mlops
serve k8s SPEC` prints these manifests for review or `kubectl apply`. The step's inputs are read from
/inputs/<name>, a read-only volume from the PersistentVolumeClaim named by `inputs_claim` (copy the
artifacts there). Pure: reads no secret value and creates nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers.k3s_render import dns_label, label_value
from mlops_nocode.spec.expressions import EXPR_RE, apply_filter
from mlops_nocode.spec.serve import ServeRuntime

PORT = 8000


def serve_objects(
    step: PlanStep,
    *,
    namespace: str,
    image: str,
    name: str | None = None,
    inputs_claim: str = "mlops-serve-inputs",
    pull_policy: str = "IfNotPresent",
) -> list[dict[str, Any]]:
    """The ConfigMap, Deployment and Service of serve step `step` (see the module docstring)."""
    cfg = ServeRuntime.model_validate(step.config or {})
    svc = dns_label(name or (cfg.name if cfg.name and "${{" not in cfg.name else step.id))
    labels = {
        "app.kubernetes.io/name": svc,
        "app.kubernetes.io/managed-by": "mlops-nocode",
        "mlops-nocode/step": label_value(step.id),
    }
    meta = {"namespace": dns_label(namespace), "labels": labels}
    inputs = {n: f"/inputs/{dns_label(n)}" for n in step.inputs}
    payload: dict[str, Any] = {
        "inputs": inputs,
        "params": step.params,  # secret placeholders stay placeholders; the pod fills them from its env
        "env": {"HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONUNBUFFERED": "1", "MLOPS_SERVICE": svc},
        "listen": ["0.0.0.0", PORT],
        "secret_names": list(step.secrets),
        "cwd": "/tmp",
    }
    payload["env"].update({"MLOPS_SERVE_HOST": "0.0.0.0", "MLOPS_SERVE_PORT": str(PORT)})
    payload["env"].update({k: v for k, v in cfg.env.items() if "${{ secrets." not in v})
    if cfg.app:
        payload["app"] = cfg.app
    else:
        payload["argv"] = [_sub(a, step.params, inputs) for a in cfg.command or []]
    res = step.resources or {}
    sizes: dict[str, str] = {"cpu": str(res.get("cpu", 1)), "memory": str(res.get("memory", "1Gi"))}
    if int(res.get("gpu", 0) or 0):
        sizes["nvidia.com/gpu"] = str(int(res["gpu"]))
    probe = {"httpGet": {"path": cfg.health, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    env: list[dict[str, Any]] = [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": f"{svc}-secrets", "key": n}}} for n in step.secrets
    ]
    container: dict[str, Any] = {
        "name": "service",
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["python", "-m", "mlops_nocode.runtime.servehost", "--service", svc],
        "args": ["--payload", "/serve/payload.json"],
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "resources": {"requests": sizes, "limits": sizes},
        "readinessProbe": probe,
        "livenessProbe": {**probe, "initialDelaySeconds": int(cfg.ready_timeout), "failureThreshold": 3},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "payload", "mountPath": "/serve", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
            *([{"name": "inputs", "mountPath": "/inputs", "readOnly": True}] if inputs else []),
        ],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "payload", "configMap": {"name": f"{svc}-payload"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if inputs:
        volumes.append({"name": "inputs", "persistentVolumeClaim": {"claimName": dns_label(inputs_claim)}})
    pod = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    selector = {"app.kubernetes.io/name": svc}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{svc}-payload", **meta},
            "data": {"payload.json": json.dumps(payload, sort_keys=True)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": svc, **meta},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": svc, **meta},
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


def _sub(text: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """`${{ params|inputs.X }}` substituted in one pass (as the serve executor does on this machine)."""

    def one(m: re.Match[str]) -> str:
        if m[1] == "params":
            v = params.get(m[2], "")
            return apply_filter(v if isinstance(v, str) else json.dumps(v), m[3])
        if m[1] == "inputs":
            return apply_filter(inputs.get(m[2], ""), m[3])
        return m[0]

    return EXPR_RE.sub(one, text)


def serve_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as one multi-document YAML file (safe_dump escapes every string)."""
    head = "# Kubernetes objects of serve steps (mlops serve k8s); secrets come from <name>-secrets.\n"
    return head + yaml.safe_dump_all(objects, sort_keys=False, width=100)
