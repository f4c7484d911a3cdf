"""The Vast.ai provider against the API's documented request/response shapes (tests/providers/
vastai_shapes.py names the sources); the rendered start script is run for real by `sh`."""

from __future__ import annotations

import base64
import gzip
import http.server
import json
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import respx

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers import pricing
from mlops_nocode.providers.base import Deployment, LaunchSpec, Provider, ProviderError, Provisioned
from mlops_nocode.providers.vastai import PROVIDER, fail_if_lost
from tests.providers import vastai_shapes as shapes

API = "https://console.vast.ai"
KEY = "vast-key-0123456789abcdef"
TOKEN = "run-token-eyJhbGciOiJIUzI1NiJ9.secret-part"
SECRET = "s3cr3t-value-that-must-not-leak"
ENV = {
    "VAST_API_KEY": KEY,
    "MLOPS_RUN_TOKEN": TOKEN,
    "MLOPS_REPORT_TO": "https://gw.example.org",
    "HF_TOKEN": SECRET,
}
HOSTILE = [
    "'; touch /tmp/pwned-vastai; echo '",
    '"; touch /tmp/pwned-vastai; echo "',
    "$(touch /tmp/pwned-vastai)",
    "`touch /tmp/pwned-vastai`",
    "${HOME} %{x} ${{ secrets.HF_TOKEN }}",
    "line1\nline2\r\n\x00end",
    "\\u0027 </script> && | ; > < *",
]


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VASTAI_RETRY_WAIT", "0")
    for name in ("VAST_URL", "VASTAI_RUNNER_IMAGE", "VASTAI_MIN_RELIABILITY"):
        monkeypatch.delenv(name, raising=False)


def step(sid: str = "train/fit", params: dict[str, object] | None = None, **kw: object) -> PlanStep:
    base: dict[str, object] = {
        "id": sid,
        "playbook": "playbook/sklearn-train@1.0.0",
        "digest": "sha256:0",
        "runtime": "python",
        "params": params or {"estimator": "random_forest"},
        "inputs": {},
        "outputs": {"model": "model"},
        "needs": (),
        "entrypoint": "mlops_nocode.library.sklearn:train",
        "resources": {"cpu": 4, "memory": "16Gi", "gpu": 1},
        "secrets": ("HF_TOKEN",),
        "source": "pipeline/p > steps[0]",
        "target": {"provider": "vastai", "options": {}},
    }
    base.update(kw)
    return PlanStep(**base)  # type: ignore[arg-type]


def deployment(
    steps: tuple[PlanStep, ...] | None = None,
    options: dict[str, object] | None = None,
    run_id: str = "run1",
    offer: bool = True,
) -> Deployment:
    steps = steps or (step(),)
    plan = Plan(root="pipeline/p", parameters={}, steps=steps, outputs={})
    chosen = next(o for o in PROVIDER.offers() if o.id == "RTX_4090x1/US") if offer else None
    return Deployment(run_id, "train", "vastai", chosen, options or {}, steps, plan)


def files_json(bundle_files: dict[str, str]) -> dict[str, dict[str, object]]:
    return {k: json.loads(v) for k, v in bundle_files.items() if k.endswith(".json")}


def test_it_is_a_provider_with_features_state_and_a_dated_market_snapshot() -> None:
    assert isinstance(PROVIDER, Provider)
    assert PROVIDER.features.iac == "sdk" and PROVIDER.features.gpus
    assert {"private_networking", "interruptible", "container"} <= set(PROVIDER.features.unsupported)
    missing = PROVIDER.state({})
    assert not missing.ready and missing.missing == ("VAST_API_KEY",) and missing.tools == {}
    assert PROVIDER.state({"VAST_API_KEY": KEY}).ready
    sheet = pricing.load_sheet("vastai")
    assert sheet.date and "snapshot of a market" in sheet.source and "bundles" in sheet.source
    assert sheet.offers and all(o.gpu_count >= 1 and o.gpu_type and o.region for o in sheet.offers)
    assert all(0 < o.extra["reliability"] <= 1 and o.price_per_hour > 0 for o in sheet.offers)
    assert {"A100-80GB", "H100-80GB", "RTX-4090"} <= {o.gpu_type for o in sheet.offers}


def test_render_shows_the_exact_requests_without_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    steps = (step(timeout=1800.0), step("train/eval", timeout=1800.0, secrets=()))
    bundle = PROVIDER.render(deployment(steps))
    text = "\n".join(bundle.files.values()) + json.dumps(bundle.to_json())
    for value in (KEY, TOKEN, SECRET):
        assert value not in text
    docs = files_json(dict(bundle.files))
    search, create = docs["search_offers.json"], docs["create_instance.json"]
    assert search["method"] == "POST" and search["url"] == "{VAST_URL}/api/v0/bundles/"
    q = search["body"]
    assert isinstance(q, dict)
    assert q["verified"] == {"eq": True} and q["rented"] == {"eq": False} and q["type"] == "on-demand"
    assert q["gpu_name"] == {"eq": "RTX 4090"} and q["num_gpus"] == {"eq": 1}
    assert q["reliability"] == {"gte": 0.95} and q["order"] == [["dph_total", "asc"]]
    assert q["cpu_cores_effective"] == {"gte": 4.0} and q["cpu_ram"] == {"gte": 16384}
    assert create["method"] == "PUT" and create["url"] == "{VAST_URL}/api/v0/asks/{offer_id}/"
    body = create["body"]
    assert isinstance(body, dict)
    assert body["image"] == "ghcr.io/mlops-nocode/runner:0.1.0-cuda" and body["runtype"] == "args"
    assert (
        body["entrypoint"] == "sh" and body["args"][0] == "-c" and body["args"][1] == bundle.files["start.sh"]
    )
    assert set(body["env"]) == {"MLOPS_RUN_TOKEN", "MLOPS_REPORT_TO", "HF_TOKEN"}
    assert all(v.startswith("<from the environment") for v in body["env"].values())
    assert "mlops execute plan.json --report-to" in bundle.files["start.sh"]
    assert bundle.resources == ({"type": "vastai_instance", "name": "mlops-run1-train"},)
    assert bundle.price_per_hour == 0.39 and bundle.hours == 1.0 and bundle.total == 0.39
    assert {"MLOPS_RUN_TOKEN", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"} <= set(bundle.env)
    assert PROVIDER.render(deployment((step(timeout=None),))).hours is None


def fake_mlops(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "mlops"
    exe.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$MLOPS_RUN_DIR/args"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bindir


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_never_leave_their_string(tmp_path: Path, hostile: str) -> None:
    marker = Path("/tmp/pwned-vastai")
    marker.unlink(missing_ok=True)
    params = {"name": hostile, hostile: [hostile, {"nested": hostile}]}
    s = step(params=params, source=f"pipeline/{hostile} > steps[0]", secrets=())
    bundle = PROVIDER.render(deployment((s,), run_id=f"r{hostile}"))
    docs = files_json(dict(bundle.files))  # every JSON file parses: nothing broke out of a JSON string
    body = docs["create_instance.json"]["body"]
    assert isinstance(body, dict)
    label = body["label"]
    assert all(c.isalnum() or c in "._-" for c in label) and len(label) <= 256
    script = bundle.files["start.sh"]
    assert hostile not in script and "pwned" not in script and "secrets." not in script
    run_dir = tmp_path / "run"
    env = {
        "PATH": f"{fake_mlops(tmp_path)}:{os.environ['PATH']}",
        "MLOPS_RUN_DIR": str(run_dir),
        "MLOPS_REPORT_TO": "https://gw.example.org",
    }
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=60)
    assert not marker.exists()
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["steps"][0]["params"] == params and plan["steps"][0]["source"] == s.source
    args = (run_dir / "args").read_text().splitlines()
    assert args == ["execute", "plan.json", "--report-to", "https://gw.example.org"]


def test_a_plan_too_big_to_travel_inline_is_fetched_from_a_url_given_at_provision(tmp_path: Path) -> None:
    big = tuple(step(f"s{i}", params={"blob": os.urandom(64).hex()}, secrets=()) for i in range(40))
    bundle = PROVIDER.render(deployment(big))
    meta = json.loads(bundle.files["deployment.json"])
    assert meta["plan_inline"] is False and "MLOPS_PLAN_URL" in meta["required_env"]
    assert 'os.environ["MLOPS_PLAN_URL"]' in bundle.files["start.sh"]
    assert len(bundle.files["start.sh"]) < 4096
    served = Plan(root="pipeline/p", parameters={}, steps=big, outputs={}).to_text().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(served)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "PATH": f"{fake_mlops(tmp_path)}:{os.environ['PATH']}",
            "MLOPS_RUN_DIR": str(tmp_path / "run"),
            "MLOPS_REPORT_TO": "https://gw.example.org",
            "MLOPS_PLAN_URL": f"http://127.0.0.1:{server.server_port}/p",
        }
        subprocess.run(["sh", "-c", bundle.files["start.sh"]], env=env, check=True, timeout=60)
    finally:
        server.shutdown()
    assert (tmp_path / "run" / "plan.json").read_bytes() == served
    small = json.loads(PROVIDER.render(deployment()).files["deployment.json"])
    assert small["plan_inline"] is True
    b64 = re.search(
        r"sys.argv\[1\]\)\)\)' (\S+) > plan.json", PROVIDER.render(deployment()).files["start.sh"]
    )
    assert b64 and json.loads(gzip.decompress(base64.b64decode(b64[1])))["root"] == "pipeline/p"


@pytest.mark.parametrize(
    ("options", "where", "said"),
    [
        ({"colour": "red"}, "target.options.colour", "unknown Vast.ai option"),
        ({"interruptible": True}, "target.options.interruptible", "not supported"),
        ({"regions": ["US; rm -rf /"]}, "target.options.regions", "country codes"),
        ({"gpu_name": "RTX'; $(x)"}, "target.options.gpu_name", "not a GPU name"),
        ({"max_price": "cheap"}, "target.options.max_price", "must be a number"),
        ({"disk_gb": 2}, "target.options.disk_gb", "must be a number"),
    ],
)
def test_bad_options_are_located_errors(options: dict[str, object], where: str, said: str) -> None:
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment(options=options))
    assert where in e.value.where and said in e.value.what and e.value.fix


def test_the_generic_constraints_that_chose_the_offer_are_accepted() -> None:
    """`auto` (or --target-option) constraints reach every provider's options: Vast.ai must let them by."""
    options = {"gpu_type": "A100", "min_gpu_memory": "40Gi", "gpu_count": 1, "max_price_per_hour": 2}
    bundle = PROVIDER.render(deployment(options=options))
    assert "deployment.json" in bundle.files


def test_a_bad_secret_name_cannot_reach_the_instance_env() -> None:
    with pytest.raises(ProviderError) as e:
        PROVIDER.render(deployment((step(secrets=("BAD NAME=$(x)",)),)))
    assert "secret name" in e.value.what and e.value.where == "pipeline/p > steps[0]"


@respx.mock(base_url=API, assert_all_called=False)
def test_provision_rents_the_cheapest_fitting_offer_with_the_values_injected(
    respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    search = respx_mock.post("/api/v0/bundles/").respond(
        json={"offers": [shapes.offer(111, price=0.35), shapes.offer(222, price=0.41)]}
    )
    create = respx_mock.put("/api/v0/asks/111/").respond(json=shapes.CREATED)
    bundle = PROVIDER.render(deployment())
    got = PROVIDER.provision(bundle, tmp_path / "w", ENV | {"AWS_ACCESS_KEY_ID": "AKIA"})
    assert got.handle["instance_id"] == 7835610 and got.handle["offer_id"] == 111
    assert json.loads((tmp_path / "w" / "vastai.json").read_text())["instance_id"] == 7835610
    sent = json.loads(create.calls.last.request.content)
    assert sent["env"] == {
        "MLOPS_RUN_TOKEN": TOKEN,
        "MLOPS_REPORT_TO": "https://gw.example.org",
        "HF_TOKEN": SECRET,
        "AWS_ACCESS_KEY_ID": "AKIA",
    }
    assert sent["args"] == json.loads(bundle.files["create_instance.json"])["body"]["args"]
    assert (
        json.loads(search.calls.last.request.content)
        == json.loads(bundle.files["search_offers.json"])["body"]
    )
    assert create.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"
    assert Provisioned.from_json(got.to_json()) == got


@respx.mock(base_url=API)
def test_an_offer_taken_meanwhile_is_skipped_for_the_next(
    respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    respx_mock.post("/api/v0/bundles/").respond(json={"offers": [shapes.offer(111), shapes.offer(222)]})
    respx_mock.put("/api/v0/asks/111/").respond(410, json=shapes.OFFER_GONE)
    respx_mock.put("/api/v0/asks/222/").respond(json=shapes.CREATED)
    assert PROVIDER.provision(PROVIDER.render(deployment()), tmp_path, ENV).handle["offer_id"] == 222


@pytest.mark.parametrize(
    ("route", "status", "answer", "where", "said"),
    [
        ("search", 401, shapes.UNAUTHORIZED, "VAST_API_KEY", "API key was refused"),
        ("search", 429, shapes.SEARCH_QUOTA, "rate limit", "quota exceeded"),
        ("search", 200, {"offers": []}, "search_offers.json", "no Vast.ai offer fits"),
        ("create", 403, shapes.NO_CREDIT, "balance", "too little credit"),
        ("create", 401, shapes.UNAUTHORIZED, "VAST_API_KEY", "API key was refused"),
        (
            "create",
            400,
            {"success": False, "error": "invalid_args", "msg": "bad"},
            "/api/v0/asks/111/",
            "400",
        ),
    ],
)
@respx.mock(base_url=API, assert_all_called=False)
def test_provision_errors_are_located_and_leave_nothing(
    respx_mock: respx.MockRouter,
    tmp_path: Path,
    route: str,
    status: int,
    answer: dict[str, object],
    where: str,
    said: str,
) -> None:
    ok_search = {"offers": [shapes.offer(111)]}
    search = respx_mock.post("/api/v0/bundles/").respond(
        status if route == "search" else 200, json=answer if route == "search" else ok_search
    )
    respx_mock.put("/api/v0/asks/111/").respond(status, json=answer)
    destroy = respx_mock.delete(url__regex=r"/api/v0/instances/\d+/")
    with pytest.raises(ProviderError) as e:
        PROVIDER.provision(PROVIDER.render(deployment()), tmp_path, ENV)
    assert said in e.value.what and where in e.value.where and e.value.fix
    assert KEY not in f"{e.value.what}{e.value.where}{e.value.fix}" and not destroy.called
    assert search.call_count == 1  # a search quota is not retried


@pytest.mark.parametrize(
    ("effect", "said"),
    [
        (httpx.ReadTimeout("slow"), "cannot reach Vast.ai"),
        (httpx.Response(504, json={"detail": "gateway timeout"}), "answered 504"),
    ],
)
@respx.mock(base_url=API, assert_all_called=False)
def test_a_create_without_answer_destroys_what_it_may_have_made(
    respx_mock: respx.MockRouter, tmp_path: Path, effect: object, said: str
) -> None:
    respx_mock.post("/api/v0/bundles/").respond(json={"offers": [shapes.offer(111)]})
    create = respx_mock.put("/api/v0/asks/111/").mock(side_effect=[effect])
    listed = respx_mock.get("/api/v1/instances/").respond(
        json={"instances": [{"id": 99, "label": "mlops-run1-train"}, {"id": 98, "label": "someone-else"}]}
    )
    destroy = respx_mock.delete(url__regex=r"/api/v0/instances/\d+/").respond(json=shapes.DESTROYED)
    with pytest.raises(ProviderError) as e:
        PROVIDER.provision(PROVIDER.render(deployment()), tmp_path, ENV)
    assert said in e.value.what
    assert [c.request.url.path for c in destroy.calls] == ["/api/v0/instances/99/"]
    assert json.loads(listed.calls.last.request.url.params["select_filters"]) == {
        "label": {"eq": "mlops-run1-train"}
    }
    assert create.call_count == 1  # renting is not retried after a request that may have gone through


def test_missing_credentials_or_run_values_fail_before_any_request(tmp_path: Path) -> None:
    bundle = PROVIDER.render(deployment())
    with respx.mock(base_url=API) as mock:
        with pytest.raises(ProviderError) as e:
            PROVIDER.provision(bundle, tmp_path, {k: v for k, v in ENV.items() if k != "VAST_API_KEY"})
        assert e.value.where == "VAST_API_KEY"
        with pytest.raises(ProviderError) as e:
            PROVIDER.provision(bundle, tmp_path, {"VAST_API_KEY": KEY})
        assert "MLOPS_RUN_TOKEN" in e.value.what and "HF_TOKEN" in e.value.what
        assert not mock.calls


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (shapes.instance("running"), "running"),
        (shapes.instance("loading"), "pending"),
        (shapes.instance(None), "pending"),
        (shapes.instance("exited", "stopped"), "exited"),
        (shapes.instance("offline"), "lost"),
        (shapes.GONE_INSTANCE, "lost"),
    ],
)
def test_status_reads_actual_and_intended_status(answer: dict[str, object], expected: str) -> None:
    prov = Provisioned("train", "vastai", (), None, {"instance_id": 7835610})
    with respx.mock(base_url=API) as mock:
        route = mock.get("/api/v0/instances/7835610/", params={"owner": "me"}).respond(json=answer)
        assert PROVIDER.status(prov, ENV) == expected
        assert route.called


def test_a_lost_instance_fails_the_run_with_the_reason_and_is_destroyed() -> None:
    prov = Provisioned("train", "vastai", (), None, {"instance_id": 7835610})
    with respx.mock(base_url=API) as mock:
        mock.get("/api/v0/instances/7835610/").respond(
            json=shapes.instance("offline", msg="host unreachable")
        )
        destroy = mock.delete("/api/v0/instances/7835610/").respond(json=shapes.DESTROYED)
        with pytest.raises(ProviderError) as e:
            PROVIDER.launch(prov, LaunchSpec("{}", "https://gw.example.org", ("train/fit",)), ENV)
        assert (
            "lost mid-run" in e.value.what
            and "offline" in e.value.what
            and "host unreachable" in e.value.what
        )
        assert destroy.called
    with respx.mock(base_url=API) as mock:
        mock.get("/api/v0/instances/7835610/").respond(json=shapes.instance("running"))
        fail_if_lost(prov, ENV)  # alive: nothing happens


def test_teardown_is_safe_twice_and_after_a_failed_provision() -> None:
    prov = Provisioned("train", "vastai", (), None, {"instance_id": 7835610})
    with respx.mock(base_url=API) as mock:
        mock.delete("/api/v0/instances/7835610/").mock(
            side_effect=[
                httpx.Response(200, json=shapes.DESTROYED),
                httpx.Response(404, json=shapes.NO_SUCH_INSTANCE),
            ]
        )
        PROVIDER.teardown(prov, ENV)
        PROVIDER.teardown(prov, ENV)
        assert mock.calls.call_count == 2
        PROVIDER.teardown(Provisioned("train", "vastai", (), None, {}), ENV)
        assert mock.calls.call_count == 2
        mock.delete("/api/v0/instances/1/").respond(401, json=shapes.UNAUTHORIZED)
        with pytest.raises(ProviderError):
            PROVIDER.teardown(Provisioned("t", "vastai", (), None, {"instance_id": 1}), ENV)


def test_refresh_offers_stores_the_cheapest_per_gpu_count_and_country() -> None:
    rows = [
        shapes.offer(1, price=0.50),
        shapes.offer(2, price=0.37),
        shapes.offer(3, gpu="A100 SXM4", price=1.1, gpu_ram=81920, geo="Quebec, CA"),
        shapes.offer(4, price=0.30, num_gpus="not a number"),
    ]
    with respx.mock(base_url=API) as mock:
        route = mock.post("/api/v0/bundles/").respond(json={"offers": rows})
        offers = PROVIDER.refresh_offers(ENV)
        sent = json.loads(route.calls.last.request.content)
    assert sent["type"] == "on-demand" and sent["reliability"] == {"gte": 0.95}
    assert [(o.gpu_type, o.price_per_hour, o.region) for o in offers] == [
        ("A100-80GB", 1.1, "CA"),
        ("RTX-4090", 0.37, "US"),
    ]
    sheet = pricing.load_sheet("vastai")
    assert sheet.offers == tuple(offers) and "snapshot of a market" in sheet.source
    assert PROVIDER.offers() == offers


def test_a_passing_server_error_on_a_search_is_retried() -> None:
    with respx.mock(base_url=API) as mock:
        route = mock.post("/api/v0/bundles/").mock(
            side_effect=[httpx.Response(503), httpx.Response(200, json={"offers": [shapes.offer(5)]})]
        )
        assert [o.extra["ask_id"] for o in PROVIDER.refresh_offers(ENV)] == [5]
        assert route.call_count == 2
