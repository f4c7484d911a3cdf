"""The ray target from the outside, on a real two-node cluster on loopback (its dashboard too): `mlops
targets refresh ray` reads the nodes and `mlops validate` refuses what no node offers; a gateway run on
`--target ray` records the node of each step; `submit: job` has the gateway's worker submit the Runner
as a Ray Job; and `ray job submit -- mlops run --target ray` runs a pipeline from inside a job.

One cluster (a head node holding the custom resource `special`, and the dashboard) and one gateway
(SQLite) for the module; every process the tests start is theirs to stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.providers import targets
from mlops_nocode.providers.base import ProviderError
from mlops_nocode.providers.placement import placement_problems
from mlops_nocode.spec import load_text
from tests.api.conftest import Server, wait_status, wait_step_started
from tests.deploy.test_two_targets import PROVIDERS, PYPATH
from tests.deploy.test_two_targets import docs as two_targets
from tests.ray.cluster import RAY, Cluster, free_ports

WORK = """
import time

def main(ctx, n: int = 0):
    print("work", n, flush=True)
    if n < 0:  # a step that runs until it is cancelled
        time.sleep(600)
    return {"value": n * 2}
"""
DOCS = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: special-work, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(WORK)}}}
  outputs: {{value: {{type: json}}}}
  parameters: {{type: object, properties: {{n: {{type: integer}}}}}}
  resources: {{cpu: 0.5, memory: 64Mi, custom: {{special: SPECIAL}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: fan, version: 1.0.0}}
spec:
  steps:
    - {{id: a, uses: playbook/special-work, with: {{n: 1}}}}
    - {{id: b, uses: playbook/special-work, with: {{n: 2}}}}
"""
BIN = str(Path(sys.executable).parent)


class DashboardCluster(Cluster):
    """The test cluster with its dashboard (the job API) on 127.0.0.1."""

    dashboard = ""
    special_id = ""

    def start_head(self, cpus: int = 2, resources: dict[str, float] | None = None) -> None:
        gcs, client, dash = free_ports(3)
        head = ["--head", f"--port={gcs}", f"--ray-client-server-port={client}", "--include-dashboard=true",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]  # fmt: skip
        self._start("head", head, cpus, resources or {})
        self.address, self.dashboard = f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dash}"


def live_nodes(cluster: Cluster, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The cluster's live nodes, read as `mlops targets refresh ray` reads them (a process of its own)."""
    argv = [sys.executable, "-m", "mlops_nocode.providers.ray_nodes", cluster.address]
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(argv, env=cluster.driver_env(), capture_output=True, text=True, check=False)
        if done.returncode == 0 and (nodes := json.loads(done.stdout.strip().splitlines()[-1])):
            return list(nodes)
        assert time.monotonic() < deadline, done.stderr[-2000:]
        time.sleep(0.5)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rt") / "home"


@pytest.fixture(scope="module")
def cluster(home: Path) -> Iterator[DashboardCluster]:
    saved = dict(os.environ)
    # the nodes (and the jobs they run) find `mlops` on PATH and keep their files in this test's home
    os.environ.update(PATH=f"{BIN}:{os.environ['PATH']}", MLOPS_HOME=str(home), THROTTLE_DISABLE="true")
    c = DashboardCluster()
    try:
        # one node (the executor's tests cover several): the head, with the custom resource and its dashboard
        c.start_head(cpus=2, resources={"special": 2})
        c.wait_started(timeout=150)
        c.special_id = live_nodes(c)[0]["id"]
        os.environ.clear()
        os.environ.update(saved)
        yield c
    finally:
        os.environ.clear()
        os.environ.update(saved)
        c.stop()
        assert c.leftovers() == []


@pytest.fixture(scope="module")
def gateway(cluster: DashboardCluster, home: Path) -> Iterator[Server]:
    ray_env = {k: v for k, v in cluster.driver_env().items() if k.startswith("RAY_")}
    fast = {"RUN_STALE_AFTER": "5", "POLL_SECONDS": "0.1", "DEPLOYMENT_POLL_SECONDS": "0.5"}
    remote = {"PROVIDER_MODULES": PROVIDERS, "PYTHONPATH": PYPATH}  # a test k3s: a Runner process here
    s = Server(home, PATH=f"{BIN}:{os.environ['PATH']}", **ray_env, **fast, **remote)
    s.start(timeout=60)
    yield s
    s.stop()


def mlops(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", *args]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False)


def test_refresh_reads_the_nodes_and_validate_refuses_what_no_node_offers(
    cluster: DashboardCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**cluster.driver_env(), "MLOPS_HOME": str(tmp_path / "h")}
    done = mlops(["targets", "refresh", "ray", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"refreshed": {"ray": 1}}
    monkeypatch.setenv("MLOPS_HOME", env["MLOPS_HOME"])
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    [listed] = targets.targets(env, "ray", check=True)  # `mlops targets --provider ray --check`
    assert "reachable now" in listed["notes"]
    [offer] = listed["offers"]
    nodes = offer["extra"]["nodes"]
    assert {n["id"] for n in nodes if n["custom"].get("special") == 2} == {cluster.special_id}
    assert offer["price_per_hour"] == 0 and offer["vcpus"] == 2 and listed["ready"]
    spec = tmp_path / "fan.yaml"
    on_ray = DOCS.replace("  steps:\n", "  target: {provider: ray}\n  steps:\n")
    spec.write_text(on_ray.replace("SPECIAL", "3"))
    bad = mlops(["validate", str(spec), "--json"], env)
    assert bad.returncode != 0
    assert "which no node of the Ray cluster" in bad.stdout and f"({cluster.special_id[:12]})" in bad.stdout
    fits = compile_plan("pipeline/fan", Index(load_text(on_ray.replace("SPECIAL", "1"))), {})
    assert placement_problems(fits) == []
    with pytest.raises(ProviderError, match="cannot be reached"):
        targets.refresh("ray", {**env, "RAY_ADDRESS": f"127.0.0.1:{free_ports(1)[0]}"})


def run_on(gateway: Server, target: dict[str, Any], n: int) -> tuple[str, httpx.Client]:
    client = gateway.client(gateway.admin_key)
    varied = DOCS.replace("SPECIAL", "1").replace("n: 1}", f"n: {n}}}").replace("n: 2}", f"n: {n + 1}}}")
    docs = _load(varied)  # parameters of its own: no step of an earlier run's cache
    r = client.post("/api/v1/runs", json={"pipeline": docs, "target": target})
    assert r.status_code in (200, 201, 202), r.text
    return str(r.json()["id"]), client


def _closing(client: httpx.Client) -> contextlib.closing[httpx.Client]:
    return contextlib.closing(client)


def _load(text: str) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


def test_a_gateway_run_on_ray_records_the_node_of_each_step(
    gateway: Server, cluster: DashboardCluster
) -> None:
    listed = gateway.client(gateway.admin_key).get("/api/v1/targets").json()
    ray = next(t for t in listed if t["provider"] == "ray")
    assert ray["ready"] and f"RAY_ADDRESS={cluster.address}" in ray["notes"]
    run_id, client = run_on(gateway, {"provider": "ray"}, 10)
    with _closing(client):
        status = wait_status(client, run_id, 120)
        events = client.get(f"/api/v1/runs/{run_id}/events").json()
        assert status == "succeeded", events
        graph = client.get(f"/api/v1/runs/{run_id}/graph").json()["steps"]
    assert [(s["id"], s["provider"], s["deployment"]) for s in graph] == [
        ("a", "ray", "ray-cluster"),
        ("b", "ray", "ray-cluster"),
    ]
    assert {s["node"]["id"] for s in graph} == {cluster.special_id}  # only that node has `special`
    assert all(s["node"]["ip"] == "127.0.0.1" for s in graph)


def test_a_plan_mixing_ray_local_and_a_remote_target_runs_through_the_gateway(gateway: Server) -> None:
    """prep on ray -> train on a remote target (k3s, whose test provider starts its Runner here) ->
    report locally: the worker's Runner drives both the ray and the local deployment."""
    docs = two_targets()
    meta = docs[-1]
    meta["spec"]["steps"][0]["target"] = {"provider": "ray"}
    client = gateway.client(gateway.admin_key)
    with _closing(client):
        r = client.post("/api/v1/runs", json={"pipeline": docs})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        status = wait_status(client, run_id, 150)
        assert status == "succeeded", client.get(f"/api/v1/runs/{run_id}").json()
        graph = {s["id"]: s for s in client.get(f"/api/v1/runs/{run_id}/graph").json()["steps"]}
        run = client.get(f"/api/v1/runs/{run_id}").json()
    assert [graph[s]["provider"] for s in ("prep/hop", "train/hop", "report/hop")] == ["ray", "k3s", "local"]
    assert graph["prep/hop"]["node"]["ip"] == "127.0.0.1" and graph["report/hop"]["node"] is None
    assert run["outputs"]["final"] == ["prep", "train", "report"]


def test_submit_job_runs_the_runner_as_a_ray_job_reporting_to_the_gateway(
    gateway: Server, cluster: DashboardCluster
) -> None:
    target = {"provider": "ray", "options": {"submit": "job", "dashboard": cluster.dashboard}}
    run_id, client = run_on(gateway, target, 20)
    with _closing(client):
        status = wait_status(client, run_id, 150)
        events = client.get(f"/api/v1/runs/{run_id}/events").json()
        assert status == "succeeded", (events, client.get(f"/api/v1/runs/{run_id}").json())
        graph = client.get(f"/api/v1/runs/{run_id}/graph").json()["steps"]
        assert {s["node"]["id"] for s in graph} == {cluster.special_id}
    from ray.job_submission import JobSubmissionClient

    every = JobSubmissionClient(cluster.dashboard).list_jobs()
    jobs = [j for j in every if j.submission_id and run_id in j.submission_id]
    assert len(jobs) == 1 and str(jobs[0].status).endswith("SUCCEEDED")
    assert "mlops execute plan.json --deployment ray-cluster --report-to" in jobs[0].entrypoint
    with gateway.client(gateway.admin_key) as c:
        [record] = c.get(f"/api/v1/runs/{run_id}/deployments").json()
    assert "eyJ" not in json.dumps(record) and "eyJ" not in jobs[0].entrypoint  # no run token (a JWT)


def test_cancelling_a_submitted_job_run_ends_the_job(gateway: Server, cluster: DashboardCluster) -> None:
    target = {"provider": "ray", "options": {"submit": "job", "dashboard": cluster.dashboard}}
    run_id, client = run_on(gateway, target, -1)
    with _closing(client):
        wait_step_started(client, run_id, "a", 120)
        assert client.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
        assert wait_status(client, run_id, 90) == "cancelled"
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(cluster.dashboard)
    [job] = [j for j in jobs.list_jobs() if j.submission_id and run_id in j.submission_id]
    assert str(job.status).rsplit(".", 1)[-1] in ("SUCCEEDED", "FAILED", "STOPPED")  # nothing left running
    deadline = time.monotonic() + 30
    while left := running_tasks(cluster):  # the task (ray::mlops:a) and the job's Runner are gone
        assert time.monotonic() < deadline, [p.pid for p in left]
        time.sleep(0.2)


def running_tasks(cluster: DashboardCluster) -> list[psutil.Process]:
    """Processes of this cluster running a step's task or a job's Runner."""
    head = psutil.Process(cluster.nodes["head"].pid)
    found = []
    for p in [head, *head.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            line = " ".join(p.cmdline())
            if "mlops:" in line or "mlops execute" in line:
                found.append(p)
    return found


def test_ray_job_submit_runs_mlops_run_inside_a_job(cluster: DashboardCluster, tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    (work / "fan.yaml").write_text(textwrap.dedent(DOCS.replace("SPECIAL", "1")))
    env = {**cluster.driver_env(), "MLOPS_HOME": str(tmp_path / "h")}
    env.pop("RAY_ADDRESS")
    argv = [RAY, "job", "submit", "--address", cluster.dashboard, "--working-dir", str(work), "--",
            "mlops", "run", "fan.yaml", "--target", "ray", "--json"]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert '"status": "succeeded"' in done.stdout and "succeeded" in done.stdout


def test_zz_the_cluster_and_its_dashboard_listen_on_loopback_only(cluster: DashboardCluster) -> None:
    procs = cluster.leftovers()
    assert procs
    listening = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            listening += [c for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert any(c.laddr.port == int(cluster.dashboard.rsplit(":", 1)[1]) for c in listening)
    assert {c.laddr.ip for c in listening} <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, listening
    cluster.stop()
    assert cluster.leftovers() == []
