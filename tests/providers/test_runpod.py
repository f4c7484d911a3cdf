"""The runpod provider against RunPod GraphQL request/response shapes (respx; RunPod cannot be reached
from here; shapes and their sources: tests/providers/data/runpod_api.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from mlops_nocode.iac.terraform import TerraformRunner
from mlops_nocode.providers import runpod
from mlops_nocode.providers.base import LaunchSpec, ProviderError, Provisioned
from mlops_nocode.providers.pricing import load_sheet
from tests.providers.cloud_support import deployment, step

DATA = json.loads((Path(__file__).parent / "data" / "runpod_api.json").read_text())
ENV = {"RUNPOD_API_KEY": "rpa_TESTKEY0123456789"}
URL = "https://api.runpod.io/graphql"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    for name in ("RUNPOD_GRAPHQL_URL", "RUNPOD_CLOUD_TYPE", "RUNPOD_RUNNER_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "home"


def _answer(name: str) -> httpx.Response:
    d = DATA[name]
    return httpx.Response(d.get("status", 200), json=d.get("body", d))


@respx.mock
def test_refresh_offers_from_gpu_types_lowest_price(home: Path) -> None:
    route = respx.post(URL).mock(return_value=_answer("gpu_types"))
    offers = runpod.PROVIDER.refresh_offers(ENV)
    request = route.calls[0].request
    assert request.headers["Authorization"] == "Bearer rpa_TESTKEY0123456789"
    assert ENV["RUNPOD_API_KEY"] not in str(request.url)
    body = json.loads(request.content)
    assert "gpuTypes" in body["query"] and "uninterruptablePrice" in body["query"]
    # H200 has no on-demand price now: left out; A100 stops at its maxGpuCount (2)
    got = sorted((o.id, o.gpu_count, o.price_per_hour) for o in offers)
    assert got == [
        ("NVIDIA A100 80GB PCIe", 1, 1.64),
        ("NVIDIA A100 80GB PCIe", 2, 3.28),
        ("NVIDIA GeForce RTX 4090", 1, 0.69),
        ("NVIDIA GeForce RTX 4090", 2, 1.38),
        ("NVIDIA GeForce RTX 4090", 4, 2.76),
        ("NVIDIA GeForce RTX 4090", 8, 5.52),
    ]
    a100x2 = next(o for o in offers if o.gpu_count == 2 and o.id.startswith("NVIDIA A100"))
    assert (a100x2.vcpus, a100x2.memory_gib, a100x2.gpu_memory_gib, a100x2.gpu_type) == (
        16,
        234,
        80,
        "A100-80GB",
    )
    assert {o.gpu_type for o in offers} == {"A100-80GB", "RTX4090"}
    sheet = load_sheet("runpod")
    assert (
        (home / "prices" / "runpod.json").is_file() and "GraphQL" in sheet.source and len(sheet.offers) == 6
    )


@respx.mock
@pytest.mark.parametrize(("answer", "words", "fix"), [
    ("error_unauthorized", "refused the credentials", "RUNPOD_API_KEY"),
    ("error_balance", "quota or limit", "raise the quota or balance"),
])  # fmt: skip
def test_refusals_are_located_errors_that_change_nothing(
    home: Path, answer: str, words: str, fix: str
) -> None:
    respx.post(URL).mock(return_value=_answer(answer))
    with pytest.raises(ProviderError) as e:
        runpod.PROVIDER.refresh_offers(ENV)
    assert words in e.value.what and fix in e.value.fix
    assert ENV["RUNPOD_API_KEY"] not in f"{e.value.what} {e.value.where} {e.value.fix}"
    assert not (home / "prices" / "runpod.json").exists()


@respx.mock
def test_a_key_echoed_by_the_server_is_masked() -> None:
    echoed = {"errors": [{"message": f"API key {ENV['RUNPOD_API_KEY']} is not valid"}]}
    respx.post(URL).mock(return_value=httpx.Response(401, json=echoed))
    with pytest.raises(ProviderError) as e:
        runpod.PROVIDER.refresh_offers(ENV)
    assert ENV["RUNPOD_API_KEY"] not in e.value.what and "***" in e.value.what


def _provisioned(workdir: str | None = None) -> Provisioned:
    return Provisioned(
        "train-1",
        "runpod",
        ({"address": "module.runner.runpod_pod.runner"},),
        workdir,
        {"pod_id": "abc123xyz"},
    )


@respx.mock
@pytest.mark.parametrize(
    ("answer", "expected"), [("pod_running", "running"), ("pod_exited", "exited"), ("pod_gone", "lost")]
)
def test_status_from_the_pod_query(answer: str, expected: str) -> None:
    route = respx.post(URL).mock(return_value=_answer(answer))
    assert runpod.PROVIDER.status(_provisioned(), ENV) == expected
    assert json.loads(route.calls[0].request.content)["variables"] == {"podId": "abc123xyz"}


@respx.mock
def test_pod_lost_mid_run_fails_launch_naming_what_exists() -> None:
    respx.post(URL).mock(return_value=_answer("pod_gone"))
    with pytest.raises(ProviderError) as e:
        runpod.PROVIDER.launch(_provisioned(), LaunchSpec("{}", "https://gw.example.org", ("a",)), ENV)
    assert "gone" in e.value.what and e.value.created == ("module.runner.runpod_pod.runner",)


def test_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: None))
    state = runpod.PROVIDER.state({})
    assert not state.credentials and state.missing[0] == "RUNPOD_API_KEY"
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: "/usr/bin/tofu"))
    assert runpod.PROVIDER.state(ENV).ready


def test_provision_refuses_loopback_gateway_before_creating_anything(tmp_path: Path) -> None:
    bundle = runpod.PROVIDER.render(deployment("runpod", steps=(step("a", resources={"gpu": 1}),)))
    with pytest.raises(ProviderError) as e:
        runpod.PROVIDER.provision(bundle, tmp_path / "w", {**ENV, "MLOPS_RUN_TOKEN": "t"})
    assert "cannot be reached" in e.value.what and e.value.where == "GATEWAY_URL"
    assert not (tmp_path / "w").exists()
