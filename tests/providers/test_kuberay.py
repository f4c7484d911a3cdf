"""KubeRay RayCluster rendering: valid offline against the RayCluster CRD's v1 schema (shipped under
deploy/k8s/kuberay, made strict: an unknown field fails) and its pod templates against Kubernetes 1.30
(kubernetes-validate); groups sized for the steps; options checked at validate time; hostile values
refused or kept inside their strings; `mlops plan` and `mlops targets kuberay` write it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers import kuberay
from mlops_nocode.providers.base import Deployment, ProviderError
from mlops_nocode.providers.ray import PROVIDER
from tests.conftest import CliResult
from tests.providers.k3s_support import HOSTILE, step

SCHEMA = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "kuberay" / "raycluster.v1.schema.json"
K8S_VERSION = "1.30.0"


def _strict(node: Any) -> Any:
    """The CRD schema with `additionalProperties: false` wherever it lists properties and does not keep
    unknown fields (the API server prunes them: a typo would be dropped silently, here it fails)."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    return [_strict(v) for v in node] if isinstance(node, list) else node


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = _strict(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return jsonschema.Draft202012Validator(schema)


def check(obj: dict[str, Any], validator: jsonschema.Draft202012Validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    assert not errors, errors
    ns = obj["metadata"]["namespace"]
    spec = obj["spec"]
    for tpl in [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]:
        pod = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t", "namespace": ns}}
        kubernetes_validate.validate({**pod, "template": tpl}, K8S_VERSION, strict=True)


def ray_step(step_id: str, runtime: str = "python", **resources: Any) -> PlanStep:
    res = {"cpu": 1, "memory": "512Mi", "gpu": 0, **resources}
    return step(step_id, runtime=runtime, resources=res, target={"provider": "ray", "options": {}})


def ray_deployment(steps: list[PlanStep], options: dict[str, Any], run_id: str = "run-1") -> Deployment:
    plan = Plan(root="pipeline/demo", parameters={}, steps=tuple(steps), outputs={})
    return Deployment(run_id, "ray-cluster", "ray", None, options, tuple(steps), plan)


def render(steps: list[PlanStep], kr: Any, run_id: str = "run-1") -> dict[str, Any]:
    bundle = PROVIDER.render(ray_deployment(steps, {"address": "auto", "kuberay": kr}, run_id))
    assert list(bundle.files) == [kuberay.MANIFEST]
    docs = list(yaml.safe_load_all(bundle.files[kuberay.MANIFEST]))
    assert len(docs) == 1
    return dict(docs[0])


def test_groups_are_sized_for_the_largest_needs_and_validate(
    validator: jsonschema.Draft202012Validator,
) -> None:
    steps = [
        ray_step("a", cpu=2, memory="3Gi", custom={"special": 2}),
        ray_step("b", runtime="command", cpu=0.5, memory="6Gi"),
        ray_step("g", cpu=4, memory="16Gi", gpu=2, custom={"nvme": 1}),
        ray_step("call", runtime="http", cpu=64, memory="512Gi"),  # runs in the Runner: no worker for it
    ]
    obj = render(steps, {"workers": {"replicas": 2, "min": 1, "max": 4}, "autoscaling": True})
    check(obj, validator)
    assert obj["apiVersion"] == "ray.io/v1" and obj["kind"] == "RayCluster"
    spec = obj["spec"]
    assert spec["rayVersion"] == "2.60.0" and spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no step on the head
    assert head["template"]["spec"]["automountServiceAccountToken"] is True  # the autoscaler's API calls
    cpu, gpu = spec["workerGroupSpecs"]
    assert (cpu["groupName"], cpu["replicas"], cpu["minReplicas"], cpu["maxReplicas"]) == ("cpu", 2, 1, 4)
    c = cpu["template"]["spec"]["containers"][0]
    assert c["image"] == "rayproject/ray:2.60.0-py311"
    # 6Gi for the largest step plus the 1Gi object store, so Ray's `memory` of the worker covers the step
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "7168Mi"} == c["resources"]["requests"]
    assert json.loads(json.loads(cpu["rayStartParams"]["resources"])) == {"special": 2.0}
    assert cpu["rayStartParams"]["object-store-memory"] == str(2**30)
    g = gpu["template"]["spec"]["containers"][0]
    assert gpu["groupName"] == "gpu" and g["image"] == "rayproject/ray:2.60.0-py311-gpu"
    assert g["resources"]["limits"] == {"cpu": "4", "memory": "17408Mi", "nvidia.com/gpu": "2"}
    assert json.loads(json.loads(gpu["rayStartParams"]["resources"])) == {"nvme": 1.0}
    for tpl in (head["template"], cpu["template"], gpu["template"]):
        pod = tpl["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = pod["containers"][0]["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert "env" not in pod["containers"][0]  # nothing secret, nothing from the platform's environment
    assert cpu["template"]["spec"]["automountServiceAccountToken"] is False


def test_no_gpu_group_without_gpu_steps_and_options_apply(validator: jsonschema.Draft202012Validator) -> None:
    kr = {
        "name": "team-ray",
        "namespace": "ml",
        "image": "registry.example/ray:2.60.0",
        "head": {"cpu": 2, "memory": "4Gi"},
        "workers": {"replicas": 3, "node_selector": {"node.kubernetes.io/instance-type": "c5.xlarge"}},
        "labels": {"team": "ml"},
    }
    obj = render([ray_step("a"), ray_step("b", cpu=3, memory="1Gi")], kr)
    check(obj, validator)
    assert obj["metadata"]["name"] == "team-ray" and obj["metadata"]["namespace"] == "ml"
    assert obj["metadata"]["labels"]["team"] == "ml"
    (group,) = obj["spec"]["workerGroupSpecs"]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (3, 3, 3)
    assert "resources" not in group["rayStartParams"]
    pod = group["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "c5.xlarge"}
    assert pod["containers"][0]["image"] == "registry.example/ray:2.60.0"
    head = obj["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert obj["spec"]["enableInTreeAutoscaling"] is False


def test_platform_image(validator: jsonschema.Draft202012Validator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_IMAGE", "registry.example/runner:9")
    monkeypatch.setenv("RUNNER_IMAGE_CUDA", "registry.example/runner:9-cuda")
    obj = render([ray_step("a"), ray_step("g", gpu=1)], {"image": "platform"})
    check(obj, validator)
    images = [g["template"]["spec"]["containers"][0]["image"] for g in obj["spec"]["workerGroupSpecs"]]
    assert images == ["registry.example/runner:9", "registry.example/runner:9-cuda"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_option_values_are_refused_with_their_place(bad: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": bad}, "name"),
        ({"namespace": bad}, "namespace"),
        ({"image": bad}, "image"),
        ({"gpu_image": bad}, "gpu_image"),
        ({"labels": {"team": bad}}, "labels.team"),
        ({"labels": {bad: "x"}}, "labels"),
        ({"workers": {"node_selector": {"k": bad}}}, "workers.node_selector.k"),
        ({"head": {"memory": bad}}, "head.memory"),
    ]
    for options, where in cases:
        problems = kuberay.option_problems(options)
        assert problems, options
        assert problems[0].where.startswith(f"target.options.kuberay.{where}"), problems
        with pytest.raises(ProviderError) as e:
            PROVIDER.render(ray_deployment([ray_step("a")], {"kuberay": options}))
        assert "target.options.kuberay" in e.value.where


def test_values_stay_strings_and_hostile_plans_stay_out(validator: jsonschema.Draft202012Validator) -> None:
    tricky = {"a": "true", "b": "0123", "c": "null", "d": "1.5e3", "e": "yes", "f": ""}
    run = 'r"1\n---\nkind: Secret\n'  # a run id is the deployment's; it only reaches labels and names
    obj = render([ray_step("a")], {"labels": tricky, "workers": {"node_selector": tricky}}, run_id=run)
    check(obj, validator)
    labels = obj["metadata"]["labels"]
    assert {k: labels[k] for k in tricky} == tricky
    assert obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["nodeSelector"] == tricky
    assert obj["metadata"]["name"].startswith("mlops-r-1-kind-secret") and len(obj["metadata"]["name"]) <= 40
    # a plan file is untrusted: a custom resource name that would break `ray start --resources=...`
    for name in ['a"b', "x y", "$(id)", "CPU"]:
        with pytest.raises(ProviderError) as e:
            PROVIDER.render(ray_deployment([ray_step("a", custom={name: 1})], {"kuberay": {}}))
        assert "custom resource" in e.value.what


SPEC = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: work, version: 1.0.0}
spec:
  runtime: python
  python:
    code: |
      def main() -> dict:
          return {}
    entrypoint: main
  resources: {cpu: 2, memory: 3Gi, custom: {special: 1}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: rk, version: 1.0.0}
spec:
  target: {provider: ray, options: {address: "127.0.0.1:1", kuberay: KUBERAY}}
  steps:
    - {id: a, uses: playbook/work}
    - {id: b, uses: playbook/work}
"""


def test_plan_writes_the_raycluster_and_validate_locates_bad_options(
    mlops: Callable[..., CliResult], write_spec: Callable[[str], Path], tmp_path: Path
) -> None:
    env = {"RAY_ADDRESS": "127.0.0.1:1"}  # the cluster's offer; nothing connects at plan time
    good = write_spec(SPEC.replace("KUBERAY", "{workers: {replicas: 2}}"))
    r = mlops("plan", str(good), "--out", str(tmp_path / "out"), env=env)
    assert r.code == 0, r
    (found,) = (tmp_path / "out").glob("*/manifests/raycluster.yaml")
    obj = yaml.safe_load(found.read_text())
    assert obj["spec"]["workerGroupSpecs"][0]["replicas"] == 2
    bad = write_spec(SPEC.replace("KUBERAY", "{workers: {replicas: 3, max: 2}, bogus: 1}"), "bad.yaml")
    for command in ("validate", "plan"):
        r = mlops(command, str(bad), "--json", env=env)
        assert r.code == 2, r
        wheres = [p["where"] for p in r.json()["problems"]]
        assert any(w.endswith("target.options.kuberay.workers") for w in wheres), wheres
        assert any(w.endswith("target.options.kuberay.bogus") for w in wheres), wheres
        assert "Traceback" not in r.stderr


def test_targets_kuberay_command(
    mlops: Callable[..., CliResult], write_spec: Callable[[str], Path], tmp_path: Path
) -> None:
    spec = write_spec(SPEC.replace("KUBERAY", "{workers: {replicas: 2}, namespace: team}"))
    out = tmp_path / "raycluster.yaml"
    flags = ("--workers", "3", "--max-workers", "5", "--network-policy")
    r = mlops("targets", "kuberay", str(spec), "--out", str(out), *flags)
    assert r.code == 0, r
    obj, policy = yaml.safe_load_all(out.read_text())
    assert policy["kind"] == "NetworkPolicy"
    group = obj["spec"]["workerGroupSpecs"][0]
    assert (obj["metadata"]["name"], obj["metadata"]["namespace"]) == ("mlops-ray-rk", "team")
    assert (group["replicas"], group["maxReplicas"]) == (3, 5)
    r = mlops("targets", "kuberay", str(spec), "--name", "x\nkind: Secret", "--json")
    assert r.code == 2 and "Traceback" not in r.stderr, r
    assert [p["where"] for p in r.json()["problems"]] == ["kuberay (target.options.kuberay and flags).name"]


def test_the_offline_checks_catch_mistakes(validator: jsonschema.Draft202012Validator) -> None:
    obj = render([ray_step("a")], {})
    group = obj["spec"]["workerGroupSpecs"][0]
    group["groupname"] = group.pop("groupName")  # a typo the API server would prune
    with pytest.raises(AssertionError, match="groupName"):
        check(obj, validator)
    obj = render([ray_step("a")], {})
    obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(AssertionError, match="resource"):
        check(obj, validator)
    obj = render([ray_step("a")], {})
    obj["spec"]["headGroupSpec"]["template"]["spec"]["securityContext"]["runAsUser"] = "root"
    with pytest.raises((AssertionError, kubernetes_validate.ValidationError)):
        check(obj, validator)


def test_network_policy_admits_the_cluster_and_its_labelled_clients(
    validator: jsonschema.Draft202012Validator,
) -> None:
    d = ray_deployment([ray_step("a"), ray_step("g", gpu=1)], {"kuberay": {"network_policy": True}})
    bundle = PROVIDER.render(d)
    cluster, policy = yaml.safe_load_all(bundle.files[kuberay.MANIFEST])
    check(cluster, validator)
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)
    name = cluster["metadata"]["name"]
    assert [r["type"] for r in bundle.resources] == ["RayCluster", "NetworkPolicy"]
    assert policy["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    templates = [cluster["spec"]["headGroupSpec"]["template"]]
    templates += [g["template"] for g in cluster["spec"]["workerGroupSpecs"]]
    for tpl in templates:  # every pod of the cluster is selected, and admits its own pods
        assert selector.items() <= tpl["metadata"]["labels"].items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": selector}},
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"mlops-nocode/ray-client": name}}},
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
