"""The exoscale provider against Exoscale API v2 request/response shapes (respx; the API cannot be reached
from here; shapes and their sources: tests/providers/data/exoscale_api.json)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from mlops_nocode.iac.terraform import TerraformRunner
from mlops_nocode.providers import exoscale
from mlops_nocode.providers.base import LaunchSpec, ProviderError, Provisioned
from mlops_nocode.providers.exoscale_api import authorization
from mlops_nocode.providers.pricing import load_sheet

DATA = json.loads((Path(__file__).parent / "data" / "exoscale_api.json").read_text())
ENV = {"EXOSCALE_API_KEY": "EXOtestkey", "EXOSCALE_API_SECRET": "s3cr3t-exoscale-secret"}
API = "https://api-ch-gva-2.exoscale.com/v2"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EXOSCALE_ZONE", raising=False)
    yield tmp_path / "home"


def _signed_by(request: httpx.Request, key: str, secret: str) -> bool:
    header = request.headers["Authorization"]
    m = re.fullmatch(rf"EXO2-HMAC-SHA256 credential={key},expires=(\d+),signature=(\S+)", header)
    assert m, header
    message = f"{request.method} {request.url.path}\n{request.content.decode()}\n\n\n{m[1]}"
    expected = base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()
    return m[2] == expected


def test_signature_matches_exoscale_published_vectors() -> None:
    expires = int(datetime(2077, 1, 1, tzinfo=UTC).timestamp())
    key, secret = "EXOxxxxxxxxxxxxxxxxxxxxxxxx", "X" * 43
    assert authorization(key, secret, "GET", "/v2/zone", expires=expires) == (
        f"EXO2-HMAC-SHA256 credential={key},expires={expires},"
        "signature=Ntbq/p0HVmA3Zg1HHY+Lq1vjFGi7HeMrrgXDS5jRNlY="
    )
    assert authorization(key, secret, "GET", "/v2/zone", {"k2": "v2", "k1": "v1"}, expires=expires) == (
        f"EXO2-HMAC-SHA256 credential={key},signed-query-args=k1;k2,expires={expires},"
        "signature=iqOBz13+44L5j0uJclE8hmUhQQcvtCSoPEOXYK6liqY="
    )


@respx.mock
def test_refresh_offers_reads_instance_types_and_keeps_known_prices(home: Path) -> None:
    route = respx.get(f"{API}/instance-type").mock(
        return_value=httpx.Response(200, json=DATA["instance_types"])
    )
    offers = exoscale.PROVIDER.refresh_offers(ENV)
    assert route.called and _signed_by(route.calls[0].request, "EXOtestkey", ENV["EXOSCALE_API_SECRET"])
    ids = {(o.id, o.region) for o in offers}
    # unauthorized (gpu3) and unpriced (colossus) types are left out
    assert ids == {
        ("standard.medium", "ch-gva-2"),
        ("standard.medium", "de-fra-1"),
        ("gpua5000.small", "at-vie-2"),
    }
    gpu = next(o for o in offers if o.id == "gpua5000.small")
    assert (gpu.gpu_count, gpu.gpu_type, gpu.vcpus, gpu.memory_gib) == (1, "RTX-A5000", 8.0, 60.0)
    assert gpu.price_per_hour > 0
    sheet = load_sheet("exoscale")
    assert (home / "prices" / "exoscale.json").is_file() and "GET /v2/instance-type" in sheet.source
    assert len(sheet.offers) == 3


@respx.mock
def test_bad_credentials_are_a_located_error_and_change_nothing(home: Path) -> None:
    bad = DATA["error_signature"]
    respx.get(f"{API}/instance-type").mock(return_value=httpx.Response(bad["status"], json=bad["body"]))
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.refresh_offers(ENV)
    assert "refused the credentials" in e.value.what and "EXOSCALE_API_SECRET" in e.value.fix
    assert ENV["EXOSCALE_API_SECRET"] not in f"{e.value.what} {e.value.where} {e.value.fix}"
    assert not (home / "prices" / "exoscale.json").exists()


@respx.mock
def test_quota_exceeded_is_named() -> None:
    quota = DATA["error_quota"]
    respx.get(f"{API}/instance/i-1").mock(return_value=httpx.Response(quota["status"], json=quota["body"]))
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.status(_provisioned("i-1"), ENV)
    assert "quota" in e.value.what and "raise the quota" in e.value.fix


def _provisioned(instance_id: str, workdir: str | None = None) -> Provisioned:
    return Provisioned(
        "train-1",
        "exoscale",
        ({"type": "exoscale_compute_instance", "name": "runner", "address": "module.runner.x"},),
        workdir,
        {"instance_id": instance_id, "zone": "ch-gva-2"},
    )


@respx.mock
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json=DATA["instance_running"]), "running"),
        (httpx.Response(200, json={**DATA["instance_running"], "state": "starting"}), "pending"),
        (httpx.Response(200, json={**DATA["instance_running"], "state": "stopped"}), "exited"),
        (httpx.Response(200, json={**DATA["instance_running"], "state": "error"}), "lost"),
        (httpx.Response(404, json=DATA["error_not_found"]["body"]), "lost"),
    ],
)
def test_status_maps_instance_states(answer: httpx.Response, expected: str) -> None:
    route = respx.get(f"{API}/instance/f81d4fae").mock(return_value=answer)
    assert exoscale.PROVIDER.status(_provisioned("f81d4fae"), ENV) == expected
    assert _signed_by(route.calls[0].request, "EXOtestkey", ENV["EXOSCALE_API_SECRET"])


@respx.mock
def test_instance_lost_mid_run_fails_launch_naming_what_exists() -> None:
    respx.get(f"{API}/instance/gone").mock(return_value=httpx.Response(404, json={"message": "not found"}))
    spec = LaunchSpec("{}", "https://gw.example.org", ("a",))
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.launch(_provisioned("gone"), spec, ENV)
    assert "gone" in e.value.what and e.value.created == ("module.runner.x",)


def test_state_names_missing_credentials_and_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: None))
    state = exoscale.PROVIDER.state({})
    assert not state.credentials and not state.ready
    assert state.missing[:2] == ("EXOSCALE_API_KEY", "EXOSCALE_API_SECRET")
    assert any("terraform or tofu" in m for m in state.missing)
    monkeypatch.setattr(TerraformRunner, "find_binary", staticmethod(lambda env=None: "/usr/bin/terraform"))
    ready = exoscale.PROVIDER.state(ENV)
    assert ready.ready and ready.tools == {"terraform": "/usr/bin/terraform"}
    assert ENV["EXOSCALE_API_SECRET"] not in json.dumps(ready.to_json())


@pytest.mark.parametrize(
    ("env", "words"),
    [({}, "MLOPS_RUN_TOKEN is not set"), ({"MLOPS_RUN_TOKEN": "t"}, "cannot be reached")],
)
def test_provision_refuses_before_creating_anything(tmp_path: Path, env: dict[str, Any], words: str) -> None:
    from tests.providers.cloud_support import deployment, step

    bundle = exoscale.PROVIDER.render(deployment("exoscale", steps=(step("a"),)))
    with pytest.raises(ProviderError) as e:
        exoscale.PROVIDER.provision(bundle, tmp_path / "w", {**ENV, **env})
    assert words in e.value.what
    assert not (tmp_path / "w").exists()


def test_teardown_without_working_directory_is_a_no_op(tmp_path: Path) -> None:
    exoscale.PROVIDER.teardown(_provisioned("x", str(tmp_path / "never-made")), ENV)
