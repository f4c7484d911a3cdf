"""The `ray` target at plan time (no cluster needed): its options are located problems, a target without a
cluster address says to set RAY_ADDRESS, `auto` picks the configured cluster for steps that need custom
resources (free, and says so), refreshed nodes refuse a step no node can run (listing them), `submit:
job` renders a job request without the run token, and the Runner drives several deployments at once
(local and ray) in a plan that also has a remote one."""

from __future__ import annotations

import importlib.util
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.providers import ray as rayp
from mlops_nocode.providers import registry
from mlops_nocode.providers.checks import remote_steps
from mlops_nocode.providers.placement import place
from mlops_nocode.providers.pricing import PriceSheet, save_sheet
from mlops_nocode.runs.deploying import RemoteDeployments
from mlops_nocode.runs.flow import is_remote, render
from mlops_nocode.runtime.handoff import LocalStepResults
from mlops_nocode.spec import SpecError
from tests.compiler.test_compile import catalogue, pipeline
from tests.fixtures.providers import SheetProvider, install_sheets

SPECIAL = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: special, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  resources: {cpu: 1, memory: 256Mi, custom: {special: SPECIAL}}
"""
ADDR = {"RAY_ADDRESS": "127.0.0.1:6379"}


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    install_sheets()
    with registry.override([SheetProvider("k3s")]):
        yield tmp_path / "home"


def compiled(target: dict[str, Any] | None, special: float = 1, launch: Any = None) -> Plan:
    extra = f"target: {json.dumps(target)}" if target else ""
    doc = pipeline("p", "- {id: a, uses: playbook/special}\n- {id: b, uses: playbook/add}", extra)
    return compile_plan("pipeline/p", catalogue(SPECIAL.replace("SPECIAL", str(special)), doc), {}, launch)


def problems(target: dict[str, Any] | None, env: dict[str, str], launch: Any = None, **kw: Any) -> list[Any]:
    with pytest.raises(SpecError) as e:
        place(compiled(target, launch=launch, **kw), launch, env=env)
    return e.value.to_json()


def test_unknown_and_malformed_options_are_located_and_list_the_options() -> None:
    options = {"colour": "red", "strategy": "PACKED", "submit": "later", "storage": "s3"}
    found = problems({"provider": "ray", "options": options}, ADDR)
    by_where = {p["where"].rsplit("> ", 1)[-1]: p for p in found}
    assert set(by_where) == {f"target.options.{k}" for k in options}
    assert by_where["target.options.storage"]["fix"] == "use one of: shared"  # what the executor supports
    assert "is not an option of the ray target" in by_where["target.options.colour"]["what"]
    assert "address, strategy, node_labels" in by_where["target.options.colour"]["fix"]
    assert by_where["target.options.strategy"]["fix"] == "use one of: DEFAULT, SPREAD"
    assert "it is the target of a, b" in by_where["target.options.submit"]["what"]  # once, for both steps


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("address", "127.0.0.1:6379; rm -rf /"),
        ("address", "http://127.0.0.1:8265\r\nX-Evil: 1"),
        ("node_labels", {"zone": "$(touch /tmp/x)"}),
        ("node_labels", {"a\nb": "c"}),
        ("node_ip", "127.0.0.1 && id"),
        ("node_id", "../../etc/passwd"),
        ("dashboard", 'http://127.0.0.1:8265/"}; drop'),
        ("soft", "yes"),
        ("storage", ["shared"]),
    ],
)
def test_values_that_try_to_escape_are_refused_at_plan_time(key: str, value: Any) -> None:
    found = problems({"provider": "ray", "options": {"address": "127.0.0.1:1", key: value}}, {})
    assert [p["where"].rsplit("> ", 1)[-1] for p in found] == [f"target.options.{key}"]


def test_target_ray_without_any_address_says_to_set_ray_address() -> None:
    launch = {"provider": "ray", "options": {}}  # as `--target ray` gives it
    [p] = problems(None, {}, launch=launch)
    assert "names no Ray cluster" in p["what"] and p["where"] == "--target"
    assert "RAY_ADDRESS" in p["fix"] and "options.address" in p["fix"]


def test_a_ray_address_that_is_no_cluster_address_is_refused_at_plan_time() -> None:
    [p] = problems({"provider": "ray"}, {"RAY_ADDRESS": "http://127.0.0.1:8265"})
    assert "a dashboard URL" in p["what"] and "host:port" in p["fix"]
    [q] = problems({"provider": "ray"}, {"RAY_ADDRESS": "127.0.0.1:6379`id`"})
    assert "not a cluster address" in q["what"]
    job = {"provider": "ray", "options": {"submit": "job"}}
    place(compiled(job), env={"RAY_ADDRESS": "http://127.0.0.1:8265"})  # the job API is what it needs


def test_ray_address_or_the_address_option_places_on_the_cluster_for_free() -> None:
    plan = place(compiled({"provider": "ray"}), env=ADDR)
    p = plan.step("a").placement or {}
    assert (p["provider"], p["offer"]["id"], p["price_per_hour"]) == ("ray", "cluster", 0.0)
    assert "your own Ray cluster at 127.0.0.1:6379, free" in p["why"]
    assert {s.placement["deployment"] for s in plan.steps if s.placement} == {"ray-cluster"}
    opts = {"provider": "ray", "options": {"address": "10.0.0.5:6379", "strategy": "spread"}}
    q = place(compiled(opts), env={}).step("a").placement or {}
    assert q["provider"] == "ray" and "10.0.0.5:6379" in q["why"]


def test_auto_picks_the_configured_cluster_for_custom_resources_and_never_without_one() -> None:
    p = place(compiled({"provider": "auto"}), env=ADDR).step("a").placement or {}
    assert p["provider"] == "ray" and "free" in p["why"]
    b = place(compiled({"provider": "auto"}), env=ADDR).step("b").placement or {}
    assert b["provider"] == "local"  # no custom resources: this machine, first among free offers
    [problem] = problems({"provider": "auto"}, {})
    assert "custom resources" in problem["what"]


def refreshed(nodes: list[dict[str, Any]]) -> None:
    offer = rayp.nodes_offer(ADDR["RAY_ADDRESS"], nodes)
    save_sheet(PriceSheet("ray", "2026-11-30", "test", "USD", (offer,)))


NODES = [
    {"id": "a" * 56, "ip": "127.0.0.1", "hostname": "h", "cpu": 2.0, "memory_gib": 4.0, "gpu": 0,
     "gpu_type": "", "custom": {}, "labels": {}},
    {"id": "b" * 56, "ip": "127.0.0.2", "hostname": "h", "cpu": 1.0, "memory_gib": 2.0, "gpu": 0,
     "gpu_type": "", "custom": {"special": 2.0}, "labels": {"zone": "z1"}},
]  # fmt: skip


def test_refreshed_nodes_refuse_a_step_no_node_can_run_and_list_them() -> None:
    refreshed(NODES)
    place(compiled({"provider": "ray"}, special=2), env=ADDR)  # the second node has special=2
    [p] = problems({"provider": "ray"}, ADDR, special=3)
    assert p["where"].endswith("> resources") and p["what"].startswith("step a needs CPU=1")
    assert "special=3" in p["what"] and "127.0.0.2 (bbbbbbbbbbbb): CPU=1, memory=2Gi, special=2" in p["what"]
    assert "mlops targets refresh ray" in p["fix"]
    pinned = {"provider": "ray", "options": {"node_labels": {"zone": "z2"}}}
    found = problems(pinned, ADDR)  # no node has the label: both steps are refused
    assert len(found) == 2 and all("labels {'zone': 'z2'}" in q["what"] for q in found)


def test_submit_job_renders_the_job_request_without_the_token_and_is_remote() -> None:
    plan = place(compiled({"provider": "ray", "options": {"submit": "job"}}), env=ADDR)
    assert is_remote(plan)
    assert "steps placed on ray cannot run on this machine" in remote_steps(plan)[0].what
    [bundle] = render(plan, "r1").bundles
    job = json.loads(bundle.files["job.json"])
    assert job["dashboard"] == "http://127.0.0.1:8265"
    assert job["entrypoint"].startswith("mlops execute plan.json --deployment ray-cluster --report-to ")
    assert job["runtime_env"]["env_vars"] == {
        "MLOPS_RUN_TOKEN": "<from the environment at launch: MLOPS_RUN_TOKEN>"
    }
    assert bundle.env == ("MLOPS_RUN_TOKEN",) and bundle.price_per_hour == 0.0
    driver = place(compiled({"provider": "ray"}), env=ADDR)
    assert not is_remote(driver) and remote_steps(driver) == []


def test_a_plan_mixing_local_ray_and_a_remote_target_drives_local_and_ray_here(home: Path) -> None:
    doc = pipeline(
        "p",
        """
        - {id: a, uses: playbook/special, target: {provider: ray}}
        - {id: b, uses: playbook/add, target: {provider: k3s}}
        - {id: c, uses: playbook/add}
        """,
    )
    plan = place(compile_plan("pipeline/p", catalogue(SPECIAL.replace("SPECIAL", "1"), doc), {}), env=ADDR)
    assert is_remote(plan)
    results = LocalStepResults(home / "results")
    part = RemoteDeployments(None, home, "r1", plan, results, str, "http://127.0.0.1:1", {})  # type: ignore[arg-type]
    assert part.here == ("ray-cluster", "local")  # this worker's Runner runs both
    assert [d.provider for d in part.remote] == ["k3s"]


def test_the_job_entrypoint_quotes_every_argument() -> None:
    from mlops_nocode.providers.ray_jobs import entrypoint

    hostile = "http://127.0.0.1:1/'; touch /tmp/pwned; echo '$(id)"
    line = entrypoint("ray-cluster", hostile)
    assert shlex.split(line) == ["mlops", "execute", "plan.json", "--deployment", "ray-cluster",
                                 "--report-to", hostile]  # fmt: skip


def test_targets_check_says_when_the_cluster_cannot_be_reached() -> None:
    from mlops_nocode.providers.targets import targets
    from tests.api.conftest import free_port

    env = {"RAY_ADDRESS": f"127.0.0.1:{free_port()}"}
    [quiet] = targets(env, "ray")  # no network unless asked
    assert quiet["ready"] is (importlib.util.find_spec("ray") is not None) and quiet["missing"] == []
    [asked] = targets(env, "ray", check=True)
    assert not asked["ready"] and "cannot be reached" in asked["missing"][0]
    [none] = targets({}, "ray")
    assert not none["ready"] and none["missing"][0].startswith("RAY_ADDRESS")
