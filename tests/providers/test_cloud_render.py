"""render() of the exoscale and runpod providers: the bundle (root module calling the shipped module),
the resources, the cost; offers chosen when placement named none; located errors; no secret and no
unescaped template sequence from user text in any file."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest

from mlops_nocode.providers import exoscale, runpod
from mlops_nocode.providers.base import Offer, ProviderError
from tests.providers.cloud_support import HOSTILE, deployment, step

REFS = {"${var.run_token}", "${var.secret_env}", "${var.report_to}"}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _module(bundle: Any) -> dict[str, Any]:
    return dict(json.loads(bundle.files["main.tf.json"])["module"]["runner"])


@pytest.mark.parametrize("provider", [exoscale.PROVIDER, runpod.PROVIDER])
def test_hostile_text_is_escaped_everywhere(provider: Any) -> None:
    options = {"image": HOSTILE, "ssh_public_key": HOSTILE, "template": HOSTILE, "ports": HOSTILE}
    s = step("a", {"x": HOSTILE, HOSTILE: HOSTILE}, resources={"gpu": 1})
    bundle = provider.render(deployment(provider.name, options=options, steps=(s,)))
    module = _module(bundle)
    for text in _strings({k: v for k, v in module.items() if not (isinstance(v, str) and v in REFS)}):
        # every ${ and %{ left is doubled, i.e. a literal
        assert not re.search(r"(?<![$])\$\{", text.replace("$${", "")), text
        assert not re.search(r"(?<![%])%\{", text.replace("%%{", "")), text
    assert {module[k] for k in ("run_token", "secret_env", "report_to")} == REFS
    image = module.get("image", module.get("runner_image"))
    assert image == HOSTILE.replace("${", "$${").replace("%{", "%%{")


@pytest.mark.parametrize("provider", [exoscale.PROVIDER, runpod.PROVIDER])
def test_bundle_shape_cost_and_no_secret(provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_RUN_TOKEN", "tok-should-never-appear")
    monkeypatch.setenv("EXOSCALE_API_SECRET", "exo-secret-never")
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-key-never")
    steps = (step("a", resources={"gpu": 1}, timeout=1800.0), step("b", resources={"gpu": 1}, timeout=1800.0))
    bundle = provider.render(deployment(provider.name, steps=steps))
    text = json.dumps(bundle.to_json())
    for secret in ("tok-should-never-appear", "exo-secret-never", "rp-key-never"):
        assert secret not in text
    assert bundle.hours == 1.0 and bundle.total == round(bundle.price_per_hour, 4)
    assert f"modules/{provider.name}/main.tf" in bundle.files
    root = json.loads(bundle.files["main.tf.json"])
    assert root["variable"]["run_token"] == {"type": "string", "sensitive": True}
    assert root["module"]["runner"]["source"] == f"./modules/{provider.name}"
    assert "MLOPS_RUN_TOKEN" in bundle.env
    assert all(r["name"] == "mlops-run123-train-1" for r in bundle.resources)
    assert root["module"]["runner"]["name"] == "mlops-run123-train-1"


def test_resource_names_are_unique_per_run_and_dns_labels() -> None:
    from mlops_nocode.providers._cloud import resource_name

    a = resource_name(deployment("exoscale", name="train"))
    b = resource_name(replace(deployment("exoscale", name="train"), run_id="0f3a9c7e-other"))
    assert a != b and a == "mlops-run123-train"
    long = resource_name(replace(deployment("runpod", name="x" * 80), run_id="R" * 40))
    assert len(long) <= 63 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", long)


def test_exoscale_picks_cheapest_fitting_gpu_and_cpu_offers() -> None:
    gpu = exoscale.PROVIDER.render(
        deployment("exoscale", steps=(step("a", resources={"gpu": 2, "memory": "100Gi"}),))
    )
    m = _module(gpu)
    offer = next(
        o for o in exoscale.PROVIDER.offers() if o.id == m["instance_type"] and o.region == m["zone"]
    )
    assert offer.gpu_count >= 2 and offer.memory_gib >= 100
    fitting = [o for o in exoscale.PROVIDER.offers() if o.gpu_count >= 2 and o.memory_gib >= 100]
    assert gpu.price_per_hour == min(o.price_per_hour for o in fitting)
    cpu = exoscale.PROVIDER.render(
        deployment("exoscale", steps=(step("a", resources={"cpu": 3, "memory": "6Gi"}),))
    )
    assert _module(cpu)["instance_type"] == "standard.large"
    assert [r["type"] for r in cpu.resources] == ["exoscale_security_group", "exoscale_compute_instance"]


def test_exoscale_options_add_rules_and_key() -> None:
    opts = {
        "ssh_public_key": "ssh-ed25519 AAAA x",
        "ssh_cidr": "203.0.113.0/24",
        "serve_port": 8080,
        "duration": "90m",
    }
    bundle = exoscale.PROVIDER.render(deployment("exoscale", options=opts))
    assert [r["type"] for r in bundle.resources].count("exoscale_security_group_rule") == 2
    assert {"type": "exoscale_ssh_key", "name": "mlops-run123-train-1"} in bundle.resources
    assert bundle.hours == 1.5


def test_placed_offer_is_used_as_given() -> None:
    offer = Offer(
        "runpod", "NVIDIA L4", 12, 50, 0.43, "SECURE", "L4", 1, 24, extra={"gpu_type_id": "NVIDIA L4"}
    )
    bundle = runpod.PROVIDER.render(deployment("runpod", offer=offer))
    m = _module(bundle)
    assert (m["gpu_type_id"], m["gpu_count"], bundle.price_per_hour) == ("NVIDIA L4", 1, 0.43)


def test_runpod_gpu_count_and_cpu_only_deployments() -> None:
    two = runpod.PROVIDER.render(deployment("runpod", steps=(step("a", resources={"gpu": 2}),)))
    assert _module(two)["gpu_count"] == 2
    cheapest_two = min(o.price_per_hour for o in runpod.PROVIDER.offers() if o.gpu_count == 2)
    assert two.price_per_hour == cheapest_two
    cpu = runpod.PROVIDER.render(deployment("runpod"))
    assert _module(cpu)["gpu_count"] == 1


@pytest.mark.parametrize(
    ("provider", "options", "resources", "words"),
    [
        (exoscale.PROVIDER, {}, {"cpu": 500}, "no exoscale offer fits"),
        (exoscale.PROVIDER, {"instance_type": "standard.galactic"}, {}, "no instance type"),
        (exoscale.PROVIDER, {"duration": "soon"}, {}, "not a duration"),
        (runpod.PROVIDER, {}, {"gpu": 64}, "no runpod offer fits"),
        (runpod.PROVIDER, {"gpu_type": "TPU"}, {}, "no GPU type"),
    ],
)
def test_located_errors(
    provider: Any, options: dict[str, Any], resources: dict[str, Any], words: str
) -> None:
    with pytest.raises(ProviderError) as e:
        provider.render(deployment(provider.name, options=options, steps=(step("a", resources=resources),)))
    assert words in e.value.what and e.value.where and e.value.fix


def test_no_fit_names_the_nearest_offers() -> None:
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.render(deployment("exoscale", steps=(step("a", resources={"gpu": 8}),)))
    assert "needs 1 vCPU" in e.value.what and "nearest: gpu" in e.value.what


def test_exoscale_refuses_a_plan_too_large_for_user_data() -> None:
    noise = "".join(f"{i * 7919 % 100003:x}" for i in range(60_000))
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.render(deployment("exoscale", steps=(step("a", {"blob": noise}),)))
    assert "too large for Exoscale user-data" in e.value.what


@pytest.mark.parametrize("provider", [exoscale.PROVIDER, runpod.PROVIDER])
def test_satisfies_the_provider_protocol_and_declares_features(provider: Any) -> None:
    from mlops_nocode.providers.base import Provider

    assert isinstance(provider, Provider)
    assert provider.features.gpus and provider.features.iac == "terraform"
    assert {"python", "command"} <= provider.features.runtimes
    assert all(why for why in provider.features.unsupported.values())
    sheet = {o.id for o in provider.offers() if o.gpu_count}
    assert sheet, "the price sheet lists GPU offers"


def _shipped_refs() -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "catalogue"
    import yaml

    return [  # a pipeline that needs inputs runs inside a meta-pipeline only: it is rendered there
        f"{kind[:-1]}/{p.stem}"
        for kind in ("pipelines", "metapipelines")
        for p in sorted((root / kind).glob("*.yaml"))
        if not (yaml.safe_load(p.read_text())["spec"].get("inputs"))
    ]


@pytest.mark.parametrize("ref", _shipped_refs())
def test_every_shipped_example_renders_on_both_targets(ref: str) -> None:
    from mlops_nocode.cli.source import load_source
    from mlops_nocode.compiler import compile_plan
    from mlops_nocode.providers.base import Deployment

    src = load_source(ref, [], None)
    for provider in (exoscale.PROVIDER, runpod.PROVIDER):
        plan = compile_plan(src.root, src.catalogue, {}, {"provider": provider.name, "options": {}})
        bundle = provider.render(Deployment("run-1", "all", provider.name, None, {}, plan.steps, plan))
        module = _module(bundle)
        assert json.loads(module["plan_json"].replace("$${", "${").replace("%%{", "%{"))["root"] == plan.root
        assert bundle.price_per_hour > 0 and bundle.resources
