"""Kubernetes manifests of the LiteLLM proxy (deploy/k8s/litellm/, `mlops llm manifests`, the K3s
target): a ConfigMap holding the configuration rendered from the routes, a Deployment of the pinned
LiteLLM image (non-root, probes, resources) and a ClusterIP Service. Keys are Secret references only:
the master key from Secret `litellm-master-key` (key `key`), provider keys from Secret
`litellm-provider-keys` (one key per secret name the routes use); no value is ever rendered."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlops_nocode.integrations.litellm.proxy_config import MASTER_KEY_ENV, config_yaml, secret_names
from mlops_nocode.integrations.litellm.routes import ModelRoute, RouteError

IMAGE = "ghcr.io/berriai/litellm:main-v1.108.7"
PORT = 4000
MASTER_SECRET = "litellm-master-key"
PROVIDER_SECRET = "litellm-provider-keys"
LABELS = {"app.kubernetes.io/name": "litellm", "app.kubernetes.io/managed-by": "mlops-nocode"}
FILES = ("configmap.yaml", "deployment.yaml", "service.yaml")


def _meta(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _probe(path: str, delay: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "initialDelaySeconds": delay, "periodSeconds": 10,
            "timeoutSeconds": 5, "failureThreshold": 6}  # fmt: skip


def objects(routes: Mapping[str, ModelRoute], namespace: str | None = None) -> list[dict[str, Any]]:
    """The ConfigMap, Deployment and Service of the proxy serving `routes`."""
    env: list[dict[str, Any]] = [
        {"name": MASTER_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": MASTER_SECRET, "key": "key"}}},
        {"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},
    ]
    env += [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": PROVIDER_SECRET, "key": n}}}
        for n in secret_names(routes)
    ]
    container = {
        "name": "litellm",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--config", "/app/config/config.yaml", "--port", str(PORT), "--num_workers", "1"],
        "env": env,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/health/readiness", 10),
        "livenessProbe": _probe("/health/liveliness", 30),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/app/config", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = {
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": "litellm-config"}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("litellm-config", namespace),
            "data": {"config.yaml": config_yaml(routes, platform_keys=False)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("litellm", namespace),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "litellm"}},
                "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("litellm", namespace),
            "spec": {
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": "litellm"},
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]


class _Dumper(yaml.SafeDumper):
    """Safe dumping, with multi-line strings (the ConfigMap's config) as readable literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=100)


def manifest_files(routes: Mapping[str, ModelRoute], namespace: str | None = None) -> dict[str, str]:
    """The manifests as files (FILES), as committed in deploy/k8s/litellm/."""
    head = "# Rendered by `mlops llm manifests` from the model routes; keys are Secret references only.\n"
    return {name: head + _dump(obj) for name, obj in zip(FILES, objects(routes, namespace), strict=True)}


def manifests_yaml(routes: Mapping[str, ModelRoute], namespace: str | None = None) -> str:
    """The manifests as one multi-document YAML text (the K3s target's bundle)."""
    head = "# LiteLLM proxy for this deployment (kubectl apply -f); keys are Secret references only.\n"
    return head + yaml.dump_all(objects(routes, namespace), Dumper=_Dumper, sort_keys=False, width=100)


def routes_file(path: Path) -> dict[str, ModelRoute]:
    """The routes of a routes file (the format of MLOPS_HOME/llm/routes.yaml); RouteError when bad."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        items = data.get("routes") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise RouteError(f"{path}: expected `routes: [...]`")
        routes = [ModelRoute.model_validate(item) for item in items]
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise RouteError(f"{path} is not a valid routes file: {exc}") from None
    return {r.name: r for r in routes}


def write(directory: Path, routes: Mapping[str, ModelRoute], namespace: str | None = None) -> list[Path]:
    """Write manifest_files into `directory` (created); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in manifest_files(routes, namespace).items():
        (directory / name).write_text(text, encoding="utf-8")
        paths.append(directory / name)
    return paths
