"""What a k3s deployment with container steps adds to its objects: the Runner's service account (Jobs,
pods and pod logs of its own namespace only), the work volume its step pods share, where the Runner is
(downward API), and a NetworkPolicy that cuts off step pods whose section says `network: none`.
Mirrors the shipped module's steps.tf for the review manifests (see k3s_objects.objects)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from mlops_nocode.providers.base import Deployment, ProviderError

POD_FIELDS = {
    "MLOPS_K8S_NAMESPACE": "metadata.namespace",
    "MLOPS_K8S_POD": "metadata.name",
    "MLOPS_K8S_POD_UID": "metadata.uid",
    "MLOPS_K8S_NODE": "spec.nodeName",
}
WORK_CLAIM, WORK_ROOT = "work", "/var/lib/mlops"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_FILTERED_SECRET = re.compile(r"\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_-]*\s*\|")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def needs_step_jobs(d: Deployment) -> bool:
    """Whether the deployment runs container steps (each a Job of its own)."""
    return any(s.runtime == "container" for s in d.steps)


def check_steps(d: Deployment) -> None:
    """What the step Jobs cannot do, known at plan time: a filter on a secret in `env` (Kubernetes fills
    `$(NAME)` in; the Runner never sees the text to filter)."""
    for s in d.steps:
        if s.runtime != "container":
            continue
        for key, value in dict((s.config or {}).get("env") or {}).items():
            if _FILTERED_SECRET.search(str(value)):
                raise ProviderError(
                    f"step {s.id}: env {key} puts a secret through a filter, which a k3s step Job cannot do "
                    "(the secret is filled in by Kubernetes from the step-secrets Secret)",
                    f"deployment {d.name} (k3s) > {s.source} > container.env.{key}",
                    "pass the secret as it is (`${{ secrets.NAME }}`) and transform it in the container, "
                    "or place the step on local",
                )


def volume_options(d: Deployment) -> dict[str, str]:
    """`work_volume_size` and `storage_class` from the target's options, checked."""
    size = d.options.get("work_volume_size", "20Gi")
    cls = d.options.get("storage_class", "")
    where = f"deployment {d.name} (k3s) > target.options"
    if not isinstance(size, str) or not _QUANTITY.match(size):
        raise ProviderError(
            f"work_volume_size {size!r} is not a Kubernetes quantity",
            f"{where}.work_volume_size",
            "give a size such as 20Gi",
        )
    if not isinstance(cls, str) or (cls and not _SUBDOMAIN.match(cls)):
        raise ProviderError(
            f"storage_class {cls!r} is not a storage class name",
            f"{where}.storage_class",
            "name a StorageClass of the cluster (kubectl get storageclass), or leave it out for the default",
        )
    return {"work_volume_size": size, "storage_class": cls}


def patch_runner(pod_spec: dict[str, Any], container: dict[str, Any]) -> None:
    """The Runner's pod with the service account, its position and the work volume as a claim."""
    pod_spec["serviceAccountName"] = "runner"
    pod_spec["automountServiceAccountToken"] = True
    container["env"][2:2] = [
        *({"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}} for n, f in POD_FIELDS.items()),
        {"name": "MLOPS_K8S_CLAIM", "value": WORK_CLAIM},
        {"name": "MLOPS_K8S_SHARED", "value": WORK_ROOT},
    ]
    for v in pod_spec["volumes"]:
        if v["name"] == "work":
            v.pop("emptyDir", None)
            v["persistentVolumeClaim"] = {"claimName": WORK_CLAIM}


def objects(a: Mapping[str, Any], meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, PersistentVolumeClaim and NetworkPolicy (module arguments `a`)."""
    ns = a["namespace"]
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": a["work_volume_size"]}},
    }
    if a["storage_class"]:
        pvc_spec["storageClassName"] = a["storage_class"]
    rules = [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
    ]
    offline = {"mlops-nocode/role": "step", "mlops-nocode/network": "none"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "runner", **meta},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "runner-steps", **meta},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "runner-steps", **meta},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner-steps"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": WORK_CLAIM, **meta},
            "spec": pvc_spec,
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "steps-offline", **meta},
            "spec": {"podSelector": {"matchLabels": offline}, "policyTypes": ["Ingress", "Egress"]},
        },
    ]


RESOURCES = [
    ("kubernetes_service_account_v1", "runner"),
    ("kubernetes_role_v1", "runner-steps"),
    ("kubernetes_role_binding_v1", "runner-steps"),
    ("kubernetes_persistent_volume_claim_v1", WORK_CLAIM),
    ("kubernetes_network_policy_v1", "steps-offline"),
]
