"""Rendering for K3s: the bundle's files, the Kubernetes objects (validated offline against Kubernetes
1.30 with kubernetes-validate), escaping of hostile strings (checked by real terraform), cost."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlops_nocode.iac import hcl
from mlops_nocode.providers.base import Deployment, Offer, ProviderError
from mlops_nocode.providers.k3s import PROVIDER
from mlops_nocode.providers.k3s_render import dns_label, label_value
from tests.providers.k3s_support import HOSTILE, deployment, step, terraform_binary

K8S_VERSION = "1.30.0"


def _docs(bundle_files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(bundle_files["manifests/k3s.yaml"]) if d]


def test_bundle_calls_the_copied_module_and_never_holds_a_secret_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_RUN_TOKEN", "tok-SECRET-123")
    monkeypatch.setenv("HF_TOKEN", "hf-SECRET-456")
    d = deployment([step(secrets=("HF_TOKEN",), timeout=1800.0)], options={"port": 8080})
    b = PROVIDER.render(d)
    root = json.loads(b.files["main.tf.json"])
    run = root["module"]["run"]
    assert run["source"] == "./modules/k3s"
    assert {"modules/k3s/main.tf", "modules/k3s/variables.tf", "plan.json"} <= set(b.files)
    assert run["run_token"] == "${var.run_token}" and root["variable"]["run_token"]["ephemeral"] is True
    assert run["secret_names"] == ["HF_TOKEN"] and run["gpu"] == 0 and run["cpu"] == "2"
    assert run["plan_json"] == '${file("${path.module}/plan.json")}'
    assert json.loads(b.files["plan.json"])["steps"][0]["id"] == "train"
    text = json.dumps(b.to_json())
    assert "SECRET" not in text
    assert set(b.env) == {"KUBE_CONFIG_PATH", "TF_VAR_run_token", "TF_VAR_step_secrets"}
    kinds = [r["type"] for r in b.resources]
    assert kinds.count("kubernetes_secret_v1") == 2 and "kubernetes_service_v1" in kinds


def test_manifests_are_valid_kubernetes_1_30_objects() -> None:
    gpu = Offer(
        "k3s",
        "gpu-1xL4",
        8,
        32,
        0.5,
        gpu_type="L4",
        gpu_count=1,
        extra={"node_selector": {"node.kubernetes.io/instance-type": "gpu-1xL4"}},
    )
    d = deployment(
        [step(resources={"cpu": 4, "memory": "16Gi", "gpu": 1}, secrets=("HF_TOKEN",))],
        options={"port": 9000},
        offer=gpu,
    )
    docs = _docs(PROVIDER.render(d).files)
    kinds = ["Namespace", "ConfigMap", "Secret", "Secret", "Job", "NetworkPolicy", "Service"]
    assert [x["kind"] for x in docs] == kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    job = docs[4]["spec"]["template"]["spec"]
    c = job["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["command"] == [
        "mlops",
        "execute",
        "/plan/plan.json",
        "--deployment",
        "k3s-0",
        "--run-id",
        "run-1",
    ]
    reported = _docs(PROVIDER.render(deployment(options={"report_to": "https://gw.example:8000"})).files)
    runner = next(x for x in reported if x["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
    assert runner["command"][3:] == ["--deployment", "k3s-0", "--report-to", "https://gw.example:8000"]
    assert job["nodeSelector"] == {"node.kubernetes.io/instance-type": "gpu-1xL4"}
    assert all("data" not in x for x in docs if x["kind"] == "Secret")
    token_env = next(e for e in c["env"] if e["name"] == "MLOPS_RUN_TOKEN")
    assert token_env["valueFrom"]["secretKeyRef"] == {"name": "run-token", "key": "token"}


def test_validator_catches_a_broken_object() -> None:
    """The offline validation really checks: a Job without a template is refused."""
    docs = _docs(PROVIDER.render(deployment()).files)
    job = next(x for x in docs if x["kind"] == "Job")
    del job["spec"]["template"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_stay_in_their_string(hostile: str) -> None:
    s = step(f"st{len(hostile)}", params={"p": hostile, hostile: "v"})
    d = deployment(
        [s],
        options={
            "report_to": "https://gw.example/x?a=" + hostile.replace(" ", "")
            if "\n" not in hostile and " " not in hostile
            else ""
        },
        run_id=hostile,
        name=hostile,
    )
    b = PROVIDER.render(d)
    docs = _docs(b.files)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert json.loads(docs[1]["data"]["plan.json"])["steps"][0]["params"] == {"p": hostile, hostile: "v"}
    root = json.loads(b.files["main.tf.json"])
    ns = root["module"]["run"]["namespace"]
    assert ns == docs[0]["metadata"]["name"] and ns == dns_label(f"mlops-{hostile}-{hostile}")
    labels = root["module"]["run"]["labels"]
    assert labels["mlops-nocode/run"] == label_value(hostile)


def test_names_are_dns_labels_deterministically() -> None:
    assert dns_label("train") == "train"
    a, b = dns_label("Train_Model"), dns_label("train-model!")
    assert a != b and a == dns_label("Train_Model") and a.startswith("train-model-")
    long = dns_label("x" * 200)
    assert len(long) <= 63 and long != dns_label("x" * 201)
    assert dns_label("\n;$").startswith("x-")
    for h in HOSTILE:
        assert (
            kubernetes_validate.validate(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": dns_label(h), "labels": {"v": label_value(h)}},
                },
                K8S_VERSION,
                strict=True,
            )
            is not None
        )


def test_bad_options_and_secret_names_are_located_errors() -> None:
    cases = [
        ({"port": 70000}, "target.options.port"),
        ({"image": "a b"}, "target.options.image"),
        ({"image_pull_policy": "Sometimes"}, "target.options.image_pull_policy"),
        ({"report_to": "file:///etc/passwd"}, "target.options.report_to"),
        ({"node_selector": {"a b": "c"}}, "target.options.node_selector"),
        ({"node_selector": {"ok": "x\ny"}}, "target.options.node_selector"),
    ]
    for options, where in cases:
        with pytest.raises(ProviderError) as e:
            PROVIDER.render(deployment(options=options))
        assert where in e.value.where and e.value.fix
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment([step(secrets=("BAD-NAME;x",))]))
    assert "secrets" in e.value.where
    with pytest.raises(ProviderError):
        PROVIDER.render(deployment([step(secrets=("MLOPS_RUN_TOKEN",))]))


def test_cost_is_price_times_expected_hours() -> None:
    offer = Offer("k3s", "cpu-4x16", 4, 16, 0.2)
    b = PROVIDER.render(deployment([step("a", timeout=1800.0), step("b", timeout=5400.0)], offer=offer))
    assert (b.price_per_hour, b.hours, b.total) == (0.2, 2.0, 0.4)
    no_timeout = PROVIDER.render(deployment([step("a", timeout=60.0), step("b")], offer=offer))
    assert no_timeout.hours is None and no_timeout.total is None


def test_terraform_reads_escaped_strings_back_exactly(tmp_path: Path) -> None:
    """Real terraform (provider-free): every hostile string comes back byte for byte, escaped by
    hcl.value where JSON strings are templates (arguments, outputs, map keys) and as it is where they
    are literal (variable defaults: escaping them there would double the `$`)."""
    tf = terraform_binary()
    values = {f"v{i}": h for i, h in enumerate(HOSTILE)}
    root = {
        "variable": {k: {"type": "string", "default": v} for k, v in values.items()},
        "output": {
            **{f"o_{k}": {"value": hcl.value(v)} for k, v in values.items()},
            **{f"d_{k}": {"value": f"${{var.{k}}}"} for k in values},
            "m": {"value": hcl.value({h: h for h in HOSTILE})},
        },
    }
    (tmp_path / "main.tf.json").write_text(json.dumps(root))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TF_IN_AUTOMATION": "1"}
    for cmd in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        subprocess.run([tf, *cmd], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = json.loads(
        subprocess.run(
            [tf, "output", "-json"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    for k, v in values.items():
        assert out[f"o_{k}"]["value"] == v and out[f"d_{k}"]["value"] == v
    assert out["m"]["value"] == {h: h for h in HOSTILE}


def _shipped_refs() -> list[str]:
    from mlops_nocode.catalogue import builtin_path

    root = builtin_path()
    return [f"pipeline/{p.stem}" for p in sorted((root / "pipelines").glob("*.yaml"))] + [
        f"metapipeline/{p.stem}" for p in sorted((root / "metapipelines").glob("*.yaml"))
    ]


@pytest.mark.parametrize("ref", _shipped_refs())
def test_every_shipped_pipeline_renders_valid_objects(ref: str) -> None:
    from mlops_nocode.catalogue import builtin_index
    from mlops_nocode.compiler.compile import compile_plan
    from mlops_nocode.spec import SpecError

    target = {"provider": "k3s", "options": {}}
    try:
        plan = compile_plan(ref, builtin_index(), target=target)
    except SpecError:  # a reusable pipeline that needs inputs: its checked form
        plan = compile_plan(ref, builtin_index(), target=target, check_only=True)
    b = PROVIDER.render(Deployment("run-1", "k3s-0", "k3s", None, {}, plan.steps, plan))
    for doc in _docs(b.files):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert json.loads(b.files["plan.json"])["root"] == plan.root


def test_runner_image_comes_from_the_settings_unless_the_options_name_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNNER_IMAGE", "registry.example/runner:7")
    monkeypatch.setenv("RUNNER_IMAGE_CUDA", "registry.example/runner:7-cuda")
    cpu = json.loads(PROVIDER.render(deployment()).files["main.tf.json"])["module"]["run"]
    gpu_step = step(resources={"cpu": 1, "memory": "1Gi", "gpu": 2})
    gpu = json.loads(PROVIDER.render(deployment([gpu_step])).files["main.tf.json"])["module"]["run"]
    assert (cpu["image"], gpu["image"], gpu["gpu"]) == (
        "registry.example/runner:7",
        "registry.example/runner:7-cuda",
        2,
    )
    own = PROVIDER.render(deployment(options={"image": "mine:1"})).files["main.tf.json"]
    assert json.loads(own)["module"]["run"]["image"] == "mine:1"
    monkeypatch.setenv("RUNNER_IMAGE", "Bad Image;rm")
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment())
    assert "RUNNER_IMAGE" in e.value.where
