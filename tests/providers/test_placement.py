"""The placement stage across several providers (fixture price sheets with made-up prices): `auto`
picks the cheapest fitting offer and says why and what came second; explicit providers pick their own
cheapest (or the named offer); nothing fitting names the constraint that excluded the most and the
nearest offers; invalid constraint values are located problems; deployments group the placed steps."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.providers import registry
from mlops_nocode.providers.checks import check_placed, remote_steps
from mlops_nocode.providers.placement import deployments, place
from mlops_nocode.spec import SpecError
from tests.compiler.test_compile import catalogue, pipeline
from tests.fixtures.providers import SheetProvider, install_sheets

GPU = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: gpu-fit, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  resources: {cpu: 2, memory: 8Gi, gpu: 1}
"""
FLEET = ("k3s", "exoscale", "runpod", "vastai")


@pytest.fixture(autouse=True)
def fleet() -> Iterator[None]:
    install_sheets()
    with registry.override([SheetProvider(n) for n in FLEET]):
        yield


def compiled(target: dict[str, Any] | None, uses: str = "playbook/gpu-fit", launch: Any = None) -> Plan:
    extra = f"target: {json.dumps(target)}" if target else ""
    doc = pipeline("p", f"- {{id: a, uses: {uses}}}\n- {{id: b, uses: playbook/add}}", extra)
    return compile_plan("pipeline/p", catalogue(GPU, doc), {}, launch)


def placed(target: dict[str, Any] | None, env: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    plan = place(compiled(target, **kw), env=env or {})
    p = plan.step("a").placement
    assert p is not None
    return p


def problems(target: dict[str, Any] | None, launch: Any = None, **kw: Any) -> list[dict[str, str]]:
    with pytest.raises(SpecError) as e:
        place(compiled(target, launch=launch, **kw), launch, env={})
    return e.value.to_json()


def test_auto_places_a_gpu_step_on_the_cheapest_fitting_gpu_offer_and_explains() -> None:
    p = placed({"provider": "auto"})
    assert (p["provider"], p["offer"]["id"], p["price_per_hour"]) == ("runpod", "NVIDIA RTX A4000", 0.17)
    assert p["why"].startswith(
        "cheapest of 8 fitting (of 13 offer(s) from local, k3s, exoscale, vastai, runpod)"
    )
    assert "runpod credentials missing (set RUNPOD_API_KEY)" in p["why"]
    assert p["runner_up"]["provider"] == "vastai" and p["runner_up"]["offer"] == "1xRTX-4090"
    assert p["runner_up"]["why"].startswith("$0.18/h more")


def test_auto_with_constraints_and_credentials_present() -> None:
    options = {"gpu_type": "A100", "exclude_providers": ["k3s"]}
    p = placed({"provider": "auto", "options": options}, env={"VASTAI_API_KEY": "s3cret"})
    assert (p["provider"], p["offer"]["id"]) == ("vastai", "1xA100-80GB")
    assert "vastai credentials present" in p["why"] and "s3cret" not in json.dumps(p)
    assert p["runner_up"]["provider"] == "runpod" and p["runner_up"]["price_per_hour"] == 1.19
    p = placed({"provider": "auto", "options": {**options, "gpu_count": 2}})
    assert p["offer"]["id"] == "2xA100-80GB" and p["runner_up"] is None
    p = placed({"provider": "auto", "options": {"providers": ["exoscale"], "min_gpu_memory": "40Gi"}})
    assert p["offer"]["id"] == "gpu3.small"


def test_auto_prefers_this_machine_when_it_fits_for_free_unless_excluded() -> None:
    plan = place(compiled({"provider": "auto"}, uses="playbook/add"), env={})
    assert plan.step("a").placement["provider"] == "local"  # type: ignore[index]
    p = placed({"provider": "auto", "options": {"exclude_providers": ["local", "k3s"]}}, uses="playbook/add")
    assert (p["provider"], p["offer"]["id"], p["offer"]["region"]) == (
        "exoscale",
        "standard.small",
        "ch-gva-2",
    )
    regional = {"exclude_providers": ["local", "k3s"], "regions": ["de-fra-1"], "min_memory": "8Gi"}
    p = placed({"provider": "auto", "options": regional}, uses="playbook/add")
    assert (p["offer"]["id"], p["offer"]["region"], p["price_per_hour"]) == (
        "standard.large",
        "de-fra-1",
        0.1,
    )


def test_nothing_fits_names_the_constraint_that_excluded_most_and_the_nearest_offers() -> None:
    found = problems({"provider": "auto", "options": {"gpu_type": "H100", "max_price_per_hour": 1}})
    assert [p["where"].split(" > ")[1] for p in found] == ["steps[0] (a)", "steps[1] (b)"]
    pr = found[0]
    assert pr["what"].startswith("step a has no offer that fits (2 vCPU, 8 GiB, 1 GPU (H100), ≤ $1/h)")
    assert "gpu_type excluded the most (12 offers)" in pr["what"]
    nearest = (
        "nearest: runpod NVIDIA H100 80GB HBM3 (1x H100-80GB 80Gi, 16 vCPU, 125 GiB) at $2.69/h in US-TX-3"
    )
    assert f"{nearest} (misses max_price_per_hour); " in pr["what"]
    assert pr["where"] == "pipeline/p > steps[0] (a) > target (auto)" and "relax gpu_type" in pr["fix"]
    pr = problems({"provider": "exoscale", "options": {"min_vcpus": 64}})[0]
    assert "vCPUs (resources.cpu, min_vcpus) excluded the most (4 offers)" in pr["what"]


def test_explicit_providers_pick_their_cheapest_fitting_or_the_named_offer() -> None:
    p = placed({"provider": "runpod"})
    assert p["offer"]["id"] == "NVIDIA RTX A4000" and p["why"].startswith("cheapest of 3 fitting (of 3")
    p = placed({"provider": "runpod", "options": {"instance_type": "NVIDIA H100 80GB HBM3"}})
    assert p["offer"]["id"] == "NVIDIA H100 80GB HBM3" and p["why"].startswith("the only fitting offer")
    pr = problems({"provider": "runpod", "options": {"instance_type": "TPU v5"}})[0]
    assert "instance_type excluded the most (3 offers)" in pr["what"]


def test_a_provider_missing_from_this_version_is_reported_once_at_the_launch_target() -> None:
    with registry.override(hide=["runpod"]):
        got = problems(None, launch={"provider": "runpod", "options": {}})
    assert len(got) == 1 and got[0]["where"] == "--target"
    assert got[0]["what"].startswith("target provider 'runpod' is not available in this version")
    assert got[0]["what"].endswith("it is the target of a, b")


@pytest.mark.parametrize(
    ("options", "key", "what"),
    [
        ({"gpu_count": -1}, "gpu_count", "is -1"),
        ({"gpu_count": True}, "gpu_count", "is True"),
        ({"gpu_count": 1.5}, "gpu_count", "is 1.5"),
        ({"max_price_per_hour": "cheap"}, "max_price_per_hour", "is 'cheap'"),
        ({"max_price_per_hour": -0.5}, "max_price_per_hour", "is -0.5"),
        ({"min_memory": "lots"}, "min_memory", "is 'lots'"),
        ({"min_gpu_memory": [1]}, "min_gpu_memory", "is [1]"),
        ({"min_vcpus": 1e9}, "min_vcpus", "is 1000000000.0"),
        ({"regions": []}, "regions", "is []"),
        ({"regions": ["eu\n${x}"]}, "regions", "is ['eu\\n${x}']"),
        ({"gpu_type": "A100'; rm -rf /"}, "gpu_type", 'is "A100\'; rm -rf /"'),
        ({"providers": ["mars"]}, "providers", "names unknown provider(s) 'mars'"),
        ({"exclude_providers": "x" * 200}, "exclude_providers", "is 'xxxxxxx"),
        ({"instance_type": {"a": 1}}, "instance_type", "is {'a': 1}"),
    ],
)
def test_invalid_constraint_values_are_located(options: dict[str, Any], key: str, what: str) -> None:
    [pr] = problems({"provider": "auto", "options": options})
    assert pr["what"].startswith(f"target option {key!r} {what}") and len(pr["what"]) < 200
    assert pr["where"] == f"pipeline/p > steps[0] (a) > target.options.{key}"
    launched = problems(None, launch={"provider": "auto", "options": options})
    assert [p["where"] for p in launched] == [f"target.options.{key}"]


def test_deployments_group_steps_by_provider_offer_and_options_with_safe_stable_names() -> None:
    meta = pipeline(
        "portfolio",
        """
- {id: preprocessing, uses: pipeline/prep, target: {provider: local}}
- {id: training, uses: pipeline/train, target: {provider: runpod, options: {gpu_type: A100}}}
- {id: tuning, uses: pipeline/train, target: {provider: runpod, options: {gpu_type: A100, x: "1"}}}
- {id: serving, uses: pipeline/prep, target: {provider: k3s}}
""",
        kind="MetaPipeline",
    )
    prep = pipeline("prep", "- {id: clean, uses: playbook/add}\n- {id: more, uses: playbook/add}")
    train = pipeline("train", "- {id: fit, uses: playbook/gpu-fit}")
    docs = catalogue(GPU, prep, train, meta)
    plan = place(
        compile_plan("metapipeline/portfolio", docs, {}, {"provider": "local", "options": {}}), env={}
    )
    names = {s.id: s.placement["deployment"] for s in plan.steps}  # type: ignore[index]
    assert names == {
        "preprocessing/clean": "local",
        "preprocessing/more": "local",
        "training/fit": "runpod-nvidia-a100-80gb-pcie",
        "tuning/fit": "runpod-nvidia-a100-80gb-pcie-2",
        "serving/clean": "k3s-cpu-pool",
        "serving/more": "k3s-cpu-pool",
    }
    ds = deployments(plan, "20250101-120000-ab12cd")
    assert [(d.name, d.provider, len(d.steps)) for d in ds] == [
        ("local", "local", 2),
        ("runpod-nvidia-a100-80gb-pcie", "runpod", 1),
        ("runpod-nvidia-a100-80gb-pcie-2", "runpod", 1),
        ("k3s-cpu-pool", "k3s", 2),
    ]
    assert ds[0].offer is None and ds[1].offer is not None and ds[1].options == {"gpu_type": "A100"}
    assert all(re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", d.name) and len(d.name) <= 44 for d in ds)
    again = place(compile_plan("metapipeline/portfolio", docs, {}, None), env={})
    assert [d.name for d in deployments(again, "other-run")] == [d.name for d in ds]  # stable
    assert check_placed(plan) == []  # remote steps are not checked against this machine (no GPU here)
    assert remote_steps(plan)[0].what.startswith("steps placed on runpod cannot run on this")


def test_placement_survives_the_plan_file_and_a_tampered_one_is_refused_not_crashed() -> None:
    plan = place(compiled({"provider": "runpod"}), env={})
    back = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back.step("a").placement == plan.step("a").placement and check_placed(back) == []
    data = json.loads(json.dumps(plan.to_json()))
    data["steps"][0]["placement"]["offer"] = {"id": "x"}
    data["steps"][1]["placement"]["provider"] = "mars"
    data["steps"][1]["placement"]["offer"]["provider"] = "mars"
    shrunk = json.loads(json.dumps(plan.to_json()))
    shrunk["steps"][0]["placement"]["offer"]["gpu_count"] = 0
    got = [p.what for p in check_placed(Plan.from_json(data))]
    assert got == ["step a has a malformed placement", "step b is placed on unknown provider 'mars'"]
    [small] = check_placed(Plan.from_json(shrunk))
    assert "needs more than its offer" in small.what and "GPU count" in small.what


@pytest.mark.parametrize(
    "resources",
    [[], {"cpu": "many"}, {"memory": "lots"}, {"gpu": -1}, {"cpu": True}, {"memory": "1Gi\n" * 9}],
)
def test_a_plan_file_with_malformed_resources_is_refused_not_crashed(resources: Any) -> None:
    data = json.loads(json.dumps(place(compiled({"provider": "runpod"}), env={}).to_json()))
    data["steps"][1]["resources"] = resources
    [pr] = check_placed(Plan.from_json(data))
    assert pr.what.startswith("step b has malformed resources") and pr.where == "steps (b) > resources"
    for s in data["steps"]:
        s["placement"] = None  # a plan written before placement: placed first, refused the same way
    [pr] = check_placed(Plan.from_json(data))
    assert pr.what.startswith("step b has malformed resources")


def test_steps_sharing_an_explicit_target_share_one_offer_that_fits_them_all() -> None:
    plan = place(compiled({"provider": "exoscale"}), env={})
    a, b = plan.step("a").placement, plan.step("b").placement
    assert a is not None and b is not None
    assert a["offer"]["id"] == b["offer"]["id"] == "gpu3.small" and a["deployment"] == b["deployment"]
    assert "one offer for the 2 steps with this target" in b["why"]
    assert [len(d.steps) for d in deployments(plan, "r")] == [2]
    [pr] = problems({"provider": "exoscale", "options": {"min_vcpus": 64}})
    assert pr["what"].startswith("the target these steps share has no offer that fits (64 vCPU")
    assert pr["what"].endswith("it is the target of a, b")
    assert pr["where"] == "pipeline/p > steps[0] (a) > target"
    container = pipeline("c", "- {id: a, uses: playbook/box}", "target: {provider: runpod}")
    box = GPU.replace("gpu-fit", "box").replace("runtime: python", "runtime: litellm")
    box = box.replace(
        '  python: {entrypoint: "steps:add"}\n',
        "  litellm: {model: chat, messages: [{role: user, content: hi}]}\n",
    )
    with pytest.raises(SpecError) as e:
        place(compile_plan("pipeline/c", catalogue(box, container), {}, None), env={})
    runtime = "step a uses runtime 'litellm', which runpod cannot run (it runs: command, python)"
    assert runtime in str(e.value)
    assert "run litellm steps on the local target" in str(e.value)  # the provider's own reason, as the fix
