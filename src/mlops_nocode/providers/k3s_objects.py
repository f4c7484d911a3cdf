"""The Kubernetes objects of one K3s deployment, as YAML manifests for review: what the shipped `k3s`
Terraform module creates from the same arguments (see providers/k3s_render.py and k3s_steps.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from mlops_nocode.providers import k3s_steps


def objects(a: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes objects the `k3s` module creates for module arguments `a`, as API objects (the
    Secrets without their values, which exist only at provision time)."""
    ns, labels = a["namespace"], dict(a["labels"])
    meta = {"namespace": ns, "labels": labels}
    values = "set at provision time from the environment; never in a rendered file"
    sizes = {"cpu": a["cpu"], "memory": a["memory"]}
    if a["gpu"]:
        sizes["nvidia.com/gpu"] = str(a["gpu"])
    pod_labels = {**labels, "mlops-nocode/role": "runner"}
    command = ["mlops", "execute", "/plan/plan.json"]
    command += ["--deployment", a["deployment"]] if a["deployment"] else []
    if a["report_to"]:
        command += ["--report-to", a["report_to"]]
    elif a["run_id"]:
        command += ["--run-id", a["run_id"]]
    env: list[dict[str, Any]] = [
        {"name": "MLOPS_HOME", "value": "/var/lib/mlops/home"},
        {"name": "MLOPS_RUN_TOKEN", "valueFrom": {"secretKeyRef": {"name": "run-token", "key": "token"}}},
    ]
    env += [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": "step-secrets", "key": n}}}
        for n in a["secret_names"]
    ]
    container: dict[str, Any] = {
        "name": "runner",
        "image": a["image"],
        "imagePullPolicy": a["image_pull_policy"],
        "command": command,
        "env": env,
        "resources": {"requests": sizes, "limits": sizes},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "plan", "mountPath": "/plan", "readOnly": True},
            {"name": "work", "mountPath": "/var/lib/mlops"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if a["service_port"]:
        container["ports"] = [{"name": "serve", "containerPort": a["service_port"]}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "plan", "configMap": {"name": "plan"}},
            {"name": "work", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if a["node_selector"]:
        pod_spec["nodeSelector"] = dict(a["node_selector"])
    if a.get("step_jobs"):
        k3s_steps.patch_runner(pod_spec, container)
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if a.get("active_deadline_seconds"):
        job_spec["activeDeadlineSeconds"] = a["active_deadline_seconds"]
    secret_meta = {**meta, "annotations": {"mlops-nocode/values": values}}
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "plan", **meta},
            "data": {"plan.json": a["plan_json"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "run-token", **secret_meta},
            "type": "Opaque",
        },
    ]
    if a["secret_names"]:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "step-secrets", **secret_meta},
                "type": "Opaque",
            }
        )
    if a.get("step_jobs"):
        out += k3s_steps.objects(a, meta)
    out.append(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "runner", **meta}, "spec": job_spec}
    )
    policy: dict[str, Any] = {"podSelector": {"matchLabels": pod_labels}, "policyTypes": ["Ingress"]}
    if a["service_port"]:
        policy["ingress"] = [{"ports": [{"port": "serve", "protocol": "TCP"}]}]
    out.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "runner", **meta},
            "spec": policy,
        }
    )
    if a["service_port"]:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "serve", **meta},
                "spec": {
                    "type": "ClusterIP",
                    "selector": pod_labels,
                    "ports": [{"name": "serve", "port": a["service_port"], "targetPort": "serve"}],
                },
            }
        )
    return out


def manifests_yaml(a: Mapping[str, Any]) -> str:
    """`objects(a)` as one multi-document YAML file (safe_dump escapes every string)."""
    head = "# Review copy of what main.tf.json creates (Terraform applies it, not kubectl).\n"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: ~30x faster on a big plan
    return head + yaml.dump_all(objects(a), Dumper=dumper, sort_keys=False, width=100)
