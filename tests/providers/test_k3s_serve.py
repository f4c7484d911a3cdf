"""Serve steps on K3s (render-only): a ConfigMap, Deployment and Service that validate offline against
Kubernetes 1.30 (kubernetes-validate), GPUs as nvidia.com/gpu, secrets by reference only, hostile names
kept inside their strings; the pod's entry point (`servehost --payload`) really serves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers.k3s import PROVIDER
from mlops_nocode.providers.k3s_serve import serve_objects, serve_yaml
from mlops_nocode.spec import load_file, load_text
from tests.providers.k3s_support import HOSTILE

K8S_VERSION = "1.30.0"
ROOT = Path(__file__).resolve().parents[2]
SECRET = "k8s-secret-value-never-rendered"


def plan_step(playbook: str, with_: dict[str, Any], inputs: str = "") -> PlanStep:
    docs = []
    for name in ("sklearn-dataset", "sklearn-train", playbook):
        docs += load_file(ROOT / "catalogue" / "playbooks" / f"{name}.yaml")
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: p, version: 1.0.0}}
spec:
  steps:
    - {{id: load, uses: playbook/sklearn-dataset}}
    - {{id: train, uses: playbook/sklearn-train, inputs: {{dataset: load.dataset}}}}
    - {{id: serve, uses: playbook/{playbook}, with: {json.dumps(with_)}{inputs}}}
"""
    plan = compile_plan("pipeline/p", Index(docs + load_text(spec)))
    return plan.step("serve")


def test_serve_model_objects_validate() -> None:
    step = plan_step("serve-model", {"name": "iris"}, ", inputs: {model: train.model}")
    objects = serve_objects(step, namespace="ml", image="registry.example/runner:1.0")
    assert [o["kind"] for o in objects] == ["ConfigMap", "Deployment", "Service"]
    for obj in yaml.safe_load_all(serve_yaml(objects)):
        if obj:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    deployment = objects[1]["spec"]["template"]["spec"]
    container = deployment["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["command"][:3] == ["python", "-m", "mlops_nocode.runtime.servehost"]
    payload = json.loads(objects[0]["data"]["payload.json"])
    assert payload["app"] == "mlops_nocode.library.serving:model_app"
    assert payload["inputs"] == {"model": "/inputs/model"}
    assert deployment["volumes"][-1]["persistentVolumeClaim"]["claimName"] == "mlops-serve-inputs"
    assert objects[2]["spec"]["ports"][0]["targetPort"] == "http"


def test_serve_llm_asks_for_a_gpu_and_keeps_flags_in_their_place() -> None:
    step = plan_step(
        "serve-llm", {"model": "Qwen/Qwen2.5-0.5B-Instruct", "engine_args": "--max-model-len 4096"}
    )
    objects = serve_objects(step, namespace="ml", image="registry.example/runner-cuda:1.0")
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    container = objects[1]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    argv = json.loads(objects[0]["data"]["payload.json"])["argv"]
    assert argv[argv.index("--model") + 1] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert argv[argv.index("--args") + 1] == "--max-model-len 4096"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_values_stay_in_their_strings(hostile: str) -> None:
    step = plan_step("serve-model", {"name": "iris"}, ", inputs: {model: train.model}")
    step = PlanStep(**{**_fields(step), "id": f"serve{hostile}", "secrets": ("TOKEN",)})
    objects = serve_objects(step, namespace=hostile, image="registry.example/runner:1.0", name=hostile)
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    text = serve_yaml(objects)
    assert SECRET not in text
    env = objects[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["valueFrom"]["secretKeyRef"]["key"] == "TOKEN"


def test_k3s_says_serve_is_render_only() -> None:
    assert "serve" in PROVIDER.features.unsupported
    assert "serve" not in PROVIDER.features.runtimes


def test_the_pods_entry_point_serves(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    payload = {"app": "serveapps:echo", "params": {}, "inputs": {}, "env": {}, "listen": ["127.0.0.1", port]}
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nocode.runtime.servehost", "--service", "pod", "--payload", str(path)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "tests" / "fixtures"), "SERVE_TOKEN": "tok1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/info", timeout=2).json()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert info["token_ok"] is True  # the pod's environment (its Secret) reaches the app
    finally:
        proc.terminate()
        proc.wait(10)


def _fields(step: PlanStep) -> dict[str, Any]:
    return {f: getattr(step, f) for f in step.__dataclass_fields__}
