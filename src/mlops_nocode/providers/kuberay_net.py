"""The NetworkPolicy that `kuberay: {network_policy: true}` adds beside a RayCluster: Ray's ports (GCS,
dashboard, client, object transfer) have no authentication, so only the cluster's own pods and the pods
labelled as its clients (`mlops-nocode/ray-client: <cluster name>`, in any namespace: the drivers, e.g.
the gateway's workers) may connect to its pods. Egress is left open (steps fetch data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLUSTER_LABEL = "mlops-nocode/raycluster"
CLIENT_LABEL = "mlops-nocode/ray-client"


def network_policy(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The policy for RayCluster object `cluster` (its pods carry CLUSTER_LABEL: kuberay.py)."""
    meta = cluster["metadata"]
    name = meta["name"]
    own = {"matchLabels": {CLUSTER_LABEL: name}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{name}-ray", "namespace": meta["namespace"], "labels": dict(meta["labels"])},
        "spec": {
            "podSelector": own,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": own},
                        {"namespaceSelector": {}, "podSelector": {"matchLabels": {CLIENT_LABEL: name}}},
                    ]
                }
            ],
        },
    }
