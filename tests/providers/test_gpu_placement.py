"""Placement of GPU steps: the local target reports the GPUs NVML lists (a fake NVML here; this machine
has none), `gpu_type` and `gpu_memory` are checked against every target's offers, `auto` takes the
cheapest that fits, a need nothing meets is refused naming the nearest offers, and plan files carrying
malformed GPU fields are refused."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.providers import local, registry
from mlops_nocode.providers.checks import check_placed
from mlops_nocode.providers.placement import place
from mlops_nocode.spec import SpecError
from tests.compiler.test_compile import catalogue, pipeline
from tests.conftest import CliResult
from tests.fixtures.providers import SheetProvider, install_sheets
from tests.gpu_support import fake_nvml, fake_nvml_env, gpu

FLEET = ("k3s", "exoscale", "runpod", "vastai")
RTX = "NVIDIA GeForce RTX 4090"


@pytest.fixture(autouse=True)
def fleet() -> Iterator[None]:
    install_sheets()
    with registry.override([SheetProvider(n) for n in FLEET]):
        yield


def plan(resources: str, target: dict[str, Any] | None = None) -> Plan:
    doc = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: tune, version: 1.0.0}}
spec:
  runtime: python
  python: {{entrypoint: "steps:add"}}
  resources: {resources}
"""
    extra = f"target: {json.dumps(target)}" if target else ""
    return compile_plan("pipeline/p", catalogue(doc, pipeline("p", "- {id: a, uses: playbook/tune}", extra)))


def refusal(resources: str, target: dict[str, Any] | None = None) -> dict[str, str]:
    with pytest.raises(SpecError) as e:
        place(plan(resources, target), env={})
    [problem] = e.value.to_json()
    return problem


def test_the_local_target_offers_the_gpus_nvml_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml(monkeypatch, [gpu(0, RTX, 24564), gpu(1, RTX, 24564), gpu(2, "NVIDIA A100-PCIE-40GB", 40960)])
    offer = local.this_machine()
    assert (offer.gpu_count, offer.gpu_type, offer.gpu_memory_gib, offer.price_per_hour) == (
        2,
        "RTX-4090",
        24,
        0,
    )
    assert [g["gpu_type"] for g in offer.extra["gpus"]] == ["RTX-4090", "RTX-4090", "A100-40GB"]
    assert offer.extra["driver"] == "550.54.15"
    caps = local.capabilities()
    assert caps.gpus == 3 and caps.gpu_reason == ""


def test_auto_takes_this_machine_when_its_gpus_fit_and_the_cheapest_rental_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_nvml(monkeypatch, [gpu(0, RTX, 24564)])
    auto = {"provider": "auto"}
    p = place(plan("{gpu: 1, gpu_type: RTX4090, gpu_memory: 24Gi}", auto), env={}).step("a").placement
    assert p is not None and p["provider"] == "local" and "this machine, nothing is rented" in p["why"]
    p = place(plan("{gpu: 1, gpu_type: A100, gpu_memory: 80Gi}", auto), env={}).step("a").placement
    assert p is not None and p["provider"] != "local"
    assert p["offer"]["gpu_type"].startswith("A100") and p["offer"]["gpu_memory_gib"] >= 80
    assert "1 GPU (A100) with 80Gi" in p["why"]
    p = place(plan("{gpu: 1}", {"provider": "local"}), env={}).step("a").placement
    assert p is not None and p["provider"] == "local"


def test_a_gpu_need_this_machine_cannot_meet_names_the_offers_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_nvml(monkeypatch, [gpu(0, RTX, 24564)])
    pr = refusal("{gpu: 1, gpu_type: H100, gpu_memory: 80Gi}", {"provider": "local"})
    assert pr["what"].startswith(
        "step a needs 1 GPU H100 with 80Gi, this machine has 0 that fit (its GPUs: RTX-4090 24Gi); "
        "cheapest that fit elsewhere: "
    )
    assert "H100-80GB 80Gi" in pr["what"] and pr["where"].endswith("> resources.gpu")
    assert "(e.g. target auto)" in pr["fix"]
    pr = refusal("{gpu: 1, gpu_type: B200}", {"provider": "local"})
    assert "; no target offers it, nearest: " in pr["what"] and "(misses gpu_type)" in pr["what"]


def test_nothing_anywhere_fits_names_the_nearest_offers_with_their_gpu_memory() -> None:
    pr = refusal("{gpu: 1, gpu_type: H100, gpu_memory: 160Gi}", {"provider": "auto"})
    assert pr["what"].startswith("step a has no offer that fits (1 vCPU, 0.5 GiB, 1 GPU (H100) with 160Gi)")
    assert "GPU memory" not in pr["what"] and "min_gpu_memory" in pr["what"]
    assert "nearest: " in pr["what"] and "H100-80GB 80Gi" in pr["what"]


def test_without_nvml_the_local_target_has_no_gpu_and_a_gpu_step_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)  # `import torch` (another test) imports it
    caps = local.capabilities()  # no NVIDIA driver on this machine or in CI
    assert caps.gpus == 0 and caps.gpu_reason.startswith("no NVIDIA driver: none of /dev/nvidiactl")
    assert local.this_machine().extra["gpu_reason"] == caps.gpu_reason
    pr = refusal("{gpu: 1}", {"provider": "local"})
    assert pr["what"].startswith(f"step a needs 1 GPU, this machine has none ({caps.gpu_reason}); ")


def _tampered(resources: dict[str, Any]) -> Plan:
    data = json.loads(json.dumps(place(plan("{gpu: 1}", {"provider": "runpod"}), env={}).to_json()))
    data["steps"][0]["resources"] = resources
    return Plan.from_json(data)


@pytest.mark.parametrize(
    ("resources", "what"),
    [
        ({"gpu": 1, "gpu_memory": "80Gi; rm -rf /"}, "malformed resources.gpu_memory"),
        ({"gpu": 1, "gpu_memory": 80}, "malformed resources.gpu_memory"),
        ({"gpu": 1, "gpu_type": "A100\n$(reboot)"}, "malformed resources.gpu_type"),
        ({"gpu": 1, "gpu_type": ["A100"]}, "malformed resources.gpu_type"),
        ({"gpu": 0, "gpu_type": "A100"}, "gpu_memory or gpu_type without resources.gpu"),
    ],
)
def test_a_plan_file_with_malformed_gpu_fields_is_refused(resources: dict[str, Any], what: str) -> None:
    [p] = check_placed(_tampered(resources))
    assert what in p.what and p.where == "steps (a) > resources"


def test_a_remote_step_whose_gpu_model_its_offer_lacks_is_refused() -> None:
    placed = place(plan("{gpu: 1, gpu_type: A100}", {"provider": "runpod"}), env={})
    assert check_placed(placed) == []
    data = json.loads(json.dumps(placed.to_json()))
    data["steps"][0]["resources"]["gpu_type"] = "H100"
    data["steps"][0]["resources"]["gpu_memory"] = "141Gi"
    [p] = check_placed(Plan.from_json(data))
    assert "needs more than its offer" in p.what
    assert "GPU model (resources.gpu_type), GPU memory (resources.gpu_memory)" in p.what


def test_mlops_targets_and_plan_see_the_gpus_of_the_machine(
    mlops: Any, tmp_path: Path, write_spec: Any
) -> None:
    env = fake_nvml_env(tmp_path, [gpu(0, RTX, 24564), gpu(1, RTX, 24564)])
    r: CliResult = mlops("targets", "--provider", "local", "--json", env=env)
    assert r.code == 0, r
    [offer] = r.json()[0]["offers"]
    assert (offer["gpu_count"], offer["gpu_type"], offer["gpu_memory_gib"]) == (2, "RTX-4090", 24)
    assert [g["index"] for g in offer["extra"]["gpus"]] == [0, 1]
    r = mlops("targets", "--provider", "local", env=env)
    assert r.code == 0 and "2x RTX-4090" in r.stdout, r
    assert "GPUs (NVML, driver 550.54.15): 0: RTX-4090 24 GiB, 1: RTX-4090 24 GiB" in r.stdout, r
    r = mlops("targets", "--provider", "local")  # this machine: no driver
    assert r.code == 0 and "no GPU: no NVIDIA driver: none of /dev/nvidiactl" in r.stdout, r
    spec = write_spec(
        """
        apiVersion: mlops-nocode/v1
        kind: Playbook
        metadata: {name: big, version: 1.0.0}
        spec:
          runtime: command
          command: {argv: [/bin/true]}
          resources: {gpu: 4}
        ---
        apiVersion: mlops-nocode/v1
        kind: Pipeline
        metadata: {name: p, version: 1.0.0}
        spec:
          steps:
            - {id: a, uses: playbook/big}
        """
    )
    r = mlops("validate", str(spec), env=env)
    assert r.code != 0 and "needs 4 GPUs, this machine has 2 that fit" in r.stdout + r.stderr, r


def test_steps_sharing_a_remote_target_get_one_offer_with_the_gpu_model_and_memory_they_need() -> None:
    docs = [
        f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: {name}, version: 1.0.0}}
spec:
  runtime: python
  python: {{entrypoint: "steps:add"}}
  resources: {resources}
"""
        for name, resources in (("small", "{gpu: 1}"), ("big", "{gpu: 1, gpu_type: H100, gpu_memory: 80Gi}"))
    ]
    steps = "- {id: a, uses: playbook/small}\n- {id: b, uses: playbook/big}"
    text = pipeline("p", steps, 'target: {"provider": "runpod"}')
    placed = place(compile_plan("pipeline/p", catalogue(*docs, text)), env={})
    offers = {s.id: (s.placement or {})["offer"] for s in placed.steps}
    assert offers["a"] == offers["b"] and offers["a"]["gpu_type"].startswith("H100")
    assert offers["a"]["gpu_memory_gib"] >= 80
