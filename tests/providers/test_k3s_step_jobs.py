"""A k3s deployment with container steps: the Runner's service account and Role (its namespace only), the
work volume its step pods share, where it runs (downward API); rendered offline, the objects validated
against Kubernetes 1.30's schema, the module arguments against the module's variables."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlops_nocode.providers.base import ProviderError
from mlops_nocode.providers.k3s import PROVIDER
from mlops_nocode.providers.runpod import PROVIDER as RUNPOD
from mlops_nocode.providers.vastai import PROVIDER as VASTAI
from tests.providers.k3s_support import deployment, step

K8S_VERSION = "1.30.0"


def container_step(**kw: Any) -> Any:
    config = {"image": "registry.example/tools/x:1", "args": [], "env": {}, "outputs": {}}
    return step("box", runtime="container", entrypoint=None, config=config, **kw)


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files["manifests/k3s.yaml"]) if d]


def test_container_steps_get_a_service_account_a_role_and_a_work_volume() -> None:
    d = deployment([step(), container_step(secrets=("TOK",))], options={"storage_class": "local-path"})
    b = PROVIDER.render(d)
    docs = _docs(b.files)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    by_kind = {x["kind"]: x for x in docs}
    assert {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"} <= set(by_kind)
    role = by_kind["Role"]
    assert role["metadata"]["namespace"] == by_kind["Namespace"]["metadata"]["name"]
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
    ]
    assert by_kind["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "runner", "namespace": role["metadata"]["namespace"]}
    ]
    pvc = by_kind["PersistentVolumeClaim"]["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"] and pvc["storageClassName"] == "local-path"
    pod = by_kind["Job"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "runner" and pod["automountServiceAccountToken"] is True
    work = next(v for v in pod["volumes"] if v["name"] == "work")
    assert work == {"name": "work", "persistentVolumeClaim": {"claimName": "work"}}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MLOPS_K8S_POD_UID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert env["MLOPS_K8S_NODE"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["MLOPS_K8S_SHARED"]["value"] == "/var/lib/mlops" and env["MLOPS_HOME"]["value"].startswith(
        "/var/lib/mlops/"
    )
    policies = {x["metadata"]["name"]: x["spec"] for x in docs if x["kind"] == "NetworkPolicy"}
    assert policies["steps-offline"] == {
        "podSelector": {"matchLabels": {"mlops-nocode/role": "step", "mlops-nocode/network": "none"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    run = json.loads(b.files["main.tf.json"])["module"]["run"]
    assert run["step_jobs"] is True and run["work_volume_size"] == "20Gi"
    kinds = {r["type"] for r in b.resources}
    assert {"kubernetes_role_v1", "kubernetes_persistent_volume_claim_v1"} <= kinds


def test_without_container_steps_the_runner_has_no_token_and_no_claim() -> None:
    docs = _docs(PROVIDER.render(deployment([step()])).files)
    assert not {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"} & {x["kind"] for x in docs}
    pod = next(x for x in docs if x["kind"] == "Job")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    assert {"name": "work", "emptyDir": {}} in pod["volumes"]


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"work_volume_size": "lots"}, "work_volume_size"),
        ({"work_volume_size": '1Gi"\n}'}, "work_volume_size"),
        ({"storage_class": "Bad Class"}, "storage_class"),
        ({"storage_class": "${var.run_token}"}, "storage_class"),
    ],
)
def test_bad_volume_options_are_located_errors(options: dict[str, Any], where: str) -> None:
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment([container_step()], options=options))
    assert e.value.where.endswith(f"target.options.{where}")


def test_k3s_runs_container_steps_and_the_pod_clouds_say_what_to_do_instead() -> None:
    assert "container" in PROVIDER.features.runtimes and "container" not in PROVIDER.features.unsupported
    for cloud in (RUNPOD, VASTAI):
        assert "container" not in cloud.features.runtimes
        reason = cloud.features.unsupported["container"]
        assert "k3s target" in reason and "local" in reason


def test_a_filtered_secret_in_env_is_refused_at_plan_time() -> None:
    config = {"image": "x:1", "env": {"AUTH": "${{ secrets.TOK | shell_quote }}"}}
    s = step("box", runtime="container", entrypoint=None, config=config, secrets=("TOK",))
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment([s]))
    assert "through a filter" in e.value.what and e.value.where.endswith("container.env.AUTH")


def test_the_runner_does_not_hold_what_its_step_pods_ask_for() -> None:
    """A GPU container step's pod asks for the GPU; the Runner's own pod must not hold it (on a one-GPU
    node the step's pod could never start beside it)."""
    gpu_box = container_step(resources={"cpu": 8, "memory": "64Gi", "gpu": 1})
    docs = _docs(PROVIDER.render(deployment([step(resources={"cpu": 2, "memory": "4Gi"}), gpu_box])).files)
    runner = next(x for x in docs if x["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
    assert runner["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
