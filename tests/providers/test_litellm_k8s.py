"""The LiteLLM proxy's Kubernetes manifests: valid offline for Kubernetes 1.30 (kubernetes-validate), the
committed deploy/k8s/litellm files are what the renderer makes of the shipped example routes, keys are
Secret references only, and the K3s target adds them to a bundle whose plan has litellm steps."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mlops_nocode.integrations.litellm import k8s
from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from mlops_nocode.providers.k3s import PROVIDER
from tests.providers.k3s_support import deployment, step

K8S_VERSION = "1.30.0"
SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "litellm"


def test_committed_manifests_are_the_rendered_example_routes() -> None:
    routes = k8s.routes_file(SHIPPED / "routes.example.yaml")
    for name, text in k8s.manifest_files(routes).items():
        assert (SHIPPED / name).read_text(encoding="utf-8") == text, (
            f"deploy/k8s/litellm/{name} is stale: run mlops llm manifests --routes "
            "deploy/k8s/litellm/routes.example.yaml --out deploy/k8s/litellm"
        )


def test_manifests_validate_and_hold_secret_references_only() -> None:
    routes = k8s.routes_file(SHIPPED / "routes.example.yaml")
    docs = [yaml.safe_load((SHIPPED / n).read_text()) for n in k8s.FILES]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service"]
    pod = docs[1]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "ghcr.io/berriai/litellm:main-v1.108.7"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/liveliness"
    assert c["resources"]["limits"] and pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    for env in c["env"]:
        assert "value" not in env or env["name"] == "LITELLM_LOCAL_MODEL_COST_MAP"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs["LITELLM_MASTER_KEY"] == {"name": "litellm-master-key", "key": "key"}
    assert refs["OPENAI_API_KEY"] == {"name": "litellm-provider-keys", "key": "OPENAI_API_KEY"}
    config = yaml.safe_load(docs[0]["data"]["config.yaml"])
    assert {m["model_name"] for m in config["model_list"]} == set(routes)
    assert "custom_auth" not in config["general_settings"]  # the image lacks the platform's hooks


def test_hostile_route_values_stay_in_their_strings() -> None:
    model = "openai/x'\"}:{kind:Secret}#&*!|>---"
    routes = {"r": ModelRoute(name="r", model=model, api_base="http://h:1/v1?a='b'&c=\"d\"")}
    docs = list(yaml.safe_load_all(k8s.manifests_yaml(routes, namespace="ns-1")))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service"]
    config = yaml.safe_load(docs[0]["data"]["config.yaml"])
    assert config["model_list"][0]["litellm_params"]["model"] == model
    for doc in docs:
        assert doc["metadata"]["namespace"] == "ns-1"
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k3s_bundles_carry_the_proxy_when_the_plan_has_litellm_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    save_route(tmp_path, ModelRoute(name="chat", model="openai/gpt-4o-mini", api_key_secret="OPENAI_API_KEY"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-value-never-rendered")
    plain = PROVIDER.render(deployment()).files
    assert "manifests/litellm.yaml" not in plain
    with_llm = PROVIDER.render(deployment(steps=[step("ask", runtime="litellm")])).files
    asked = PROVIDER.render(deployment(options={"llm_proxy": True})).files
    for files in (with_llm, asked):
        docs = list(yaml.safe_load_all(files["manifests/litellm.yaml"]))
        for doc in docs:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert docs[0]["metadata"]["namespace"] == docs[1]["metadata"]["namespace"] != ""
        assert all("sk-live-value-never-rendered" not in text for text in files.values())
