"""Done when: a meta-pipeline with steps on two targets plans into two bundles and runs end to end, the
"remote" Runner being a second local process (started by the test provider's launch) that reads and
writes the shared artifact store and step results and reports to a live gateway (`mlops up`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status

ROOT = Path(__file__).resolve().parents[2]
PYPATH = os.pathsep.join([str(ROOT / "src"), str(ROOT)])  # this tree's code in every process started
PROVIDERS = json.dumps({"k3s": "tests.deploy.fakeprovider"})
DEP = "k3s-test-node"  # the deployment: named from its provider and offer
HOP = (
    "import json, os, sys, time; src, out, tag, wait = sys.argv[1:5]; "
    "seen = json.load(open(src)) if src else []; time.sleep(float(wait)); "
    "json.dump(seen + [tag], open(out, 'w'))"
)


def docs(remote_wait: float = 0.0) -> list[dict[str, Any]]:
    """prep (local) -> train (remote, on k3s) -> report (local), wired through their outputs."""
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "hop", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {
                "argv": [sys.executable, "-c", HOP, "${{ inputs.src }}", "${{ outputs.out }}",
                         "${{ params.tag }}", "${{ params.wait }}"],
                "outputs": {"out": "out.json"},
            },
            "inputs": {"src": {"type": "json", "optional": True}},
            "outputs": {"out": {"type": "json"}},
            "parameters": {"type": "object", "properties": {"tag": {"type": "string"},
                                                             "wait": {"type": "number", "default": 0}}},
        },
    }  # fmt: skip

    def pipeline(name: str, tag: str, wait: float, with_input: bool) -> dict[str, Any]:
        step: dict[str, Any] = {"id": "hop", "uses": "playbook/hop", "with": {"tag": tag, "wait": wait}}
        spec: dict[str, Any] = {"steps": [step], "outputs": {"out": "hop.out"}}
        if with_input:
            step["inputs"] = {"src": "inputs.src"}
            spec["inputs"] = {"src": {"type": "json"}}
        meta = {"name": name, "version": "1.0.0"}
        return {"apiVersion": "mlops-nocode/v1", "kind": "Pipeline", "metadata": meta, "spec": spec}

    meta = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "MetaPipeline",
        "metadata": {"name": "two-targets", "version": "1.0.0"},
        "spec": {
            "target": {"provider": "local"},
            "steps": [
                {"id": "prep", "uses": "pipeline/prep"},
                {"id": "train", "uses": "pipeline/train", "inputs": {"src": "prep.out"},
                 "target": {"provider": "k3s"}},
                {"id": "report", "uses": "pipeline/report", "inputs": {"src": "train.out"}},
            ],
            "outputs": {"trained": "train.out", "final": "report.out"},
        },
    }  # fmt: skip
    return [
        playbook,
        pipeline("prep", "prep", 0, False),
        pipeline("train", "train", remote_wait, True),
        pipeline("report", "report", 0, True),
        meta,
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(
        tmp_path_factory.mktemp("deploy") / "home",
        RUN_STALE_AFTER="5",
        POLL_SECONDS="0.1",
        PROVIDER_MODULES=PROVIDERS,
        DEPLOYMENT_POLL_SECONDS="0.2",
        PYTHONPATH=PYPATH,
    )
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(server.admin_key) as c:
        yield c


def test_plan_renders_two_bundles_creating_nothing(tmp_path: Path, admin: httpx.Client) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(docs()))
    env = {"PROVIDER_MODULES": PROVIDERS, "PYTHONPATH": PYPATH, "MLOPS_HOME": str(tmp_path / "home")}
    out = tmp_path / "out"
    cli = subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "plan", str(spec), "--out", str(out), "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, cwd=ROOT, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert [(b["deployment"], b["provider"]) for b in answer["bundles"]] == [
        ("local", "local"),
        (DEP, "k3s"),
    ]
    assert answer["cost"] == {"per_hour": 0.25, "total": None, "currency": "USD"}
    placed = {s["id"]: s["placement"]["provider"] for s in answer["steps"]}
    assert placed == {"prep/hop": "local", "train/hop": "k3s", "report/hop": "local"}
    tf = json.loads((out / DEP / "main.tf.json").read_text())
    assert tf["resource"]["terraform_data"][DEP]["input"] == ["train/hop"]
    assert (out / "plan.json").is_file()
    assert not (tmp_path / "home" / "deployments").exists()  # plan creates nothing

    api = admin.post("/api/v1/plan", json={"pipeline": docs()})
    assert api.status_code == 200, api.text
    assert [b["deployment"] for b in api.json()["bundles"]] == ["local", DEP]
    assert api.json()["steps"][1]["placement"]["provider"] == "k3s"


def test_runs_end_to_end_across_two_runners(server: Server, admin: httpx.Client) -> None:
    r = admin.post("/api/v1/runs", json={"pipeline": docs()})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert wait_status(admin, run_id, timeout=120) == "succeeded", admin.get(f"/api/v1/runs/{run_id}").json()
    run = admin.get(f"/api/v1/runs/{run_id}").json()
    assert run["outputs"]["final"] == ["prep", "train", "report"]  # local -> remote Runner -> local
    assert run["outputs"]["trained"] == ["prep", "train"]  # an output made remotely
    trained = admin.get(f"/api/v1/runs/{run_id}/artifacts/trained")  # served as local ones are
    assert trained.status_code == 200 and trained.json() == ["prep", "train"]
    events = admin.get(f"/api/v1/runs/{run_id}/events").json()
    finished = {e["step"] for e in events if e["type"] == "step.finished"}
    assert finished == {"prep/hop", "train/hop", "report/hop"}  # both Runners reported to the gateway
    deps = admin.get(f"/api/v1/runs/{run_id}/deployments").json()
    assert [(d["name"], d["status"]) for d in deps] == [(DEP, "destroyed")]  # torn down at the end
    workdir = server.home / "deployments" / run_id / DEP
    assert "train/hop" in (workdir / "main.tf.json").read_text()
    assert not (workdir / "instance").exists()
    started = [e["step"] for e in events if e["type"] == "step.started"]
    assert sorted(started) == ["prep/hop", "report/hop", "train/hop"]  # each step ran once
    assert started_in(server.home / "runs" / f"{run_id}.{DEP}") == ["train/hop"]  # on the remote Runner
    assert started_in(server.home / "runs" / run_id) == ["prep/hop", "report/hop"]  # on the worker's


def started_in(run_dir: Path) -> list[str]:
    """The steps a Runner started, from its own events file."""
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return sorted(e["step"] for e in map(json.loads, lines) if e["type"] == "step.started")


def mlops(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_URL": server.url, "MLOPS_TOKEN": server.admin_key, "PYTHONPATH": PYPATH}
    env["MLOPS_HOME"] = str(server.home.parent / "client-home")
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=300)


def test_a_kept_run_stays_until_destroyed(tmp_path: Path, server: Server, admin: httpx.Client) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(docs()))
    deployed = mlops(server, "deploy", str(spec), "--keep", "--wait", "--json")
    assert deployed.returncode == 0, deployed.stderr
    run_id = json.loads(deployed.stdout)["id"]
    deps = admin.get(f"/api/v1/runs/{run_id}/deployments").json()
    assert [(d["name"], d["status"]) for d in deps] == [(DEP, "succeeded")]
    assert (server.home / "deployments" / run_id / DEP / "instance").exists()
    destroyed = mlops(server, "destroy", run_id)
    assert destroyed.returncode == 0, destroyed.stderr
    assert f"deployment {DEP} (k3s)" in destroyed.stderr
    assert not (server.home / "deployments" / run_id / DEP / "instance").exists()
    again = admin.post(f"/api/v1/runs/{run_id}/destroy")  # always possible, nothing left to do
    assert [d["status"] for d in again.json()] == ["destroyed"]
    assert admin.post("/api/v1/runs/no-such-run/destroy").status_code == 404


def test_an_instance_lost_mid_run_fails_the_run_and_is_destroyed(server: Server, admin: httpx.Client) -> None:
    r = admin.post("/api/v1/runs", json={"pipeline": docs(remote_wait=60)})
    run_id = r.json()["id"]
    workdir = server.home / "deployments" / run_id / DEP
    deadline = time.monotonic() + 60
    while not (workdir / "plan.json").exists():
        assert time.monotonic() < deadline, "the remote Runner never started"
        time.sleep(0.1)
    (workdir / "lose").write_text("")
    assert wait_status(admin, run_id, timeout=60) == "failed"
    run = admin.get(f"/api/v1/runs/{run_id}").json()
    assert "lost" in run["details"] and "k3s" in run["details"]
    assert not (workdir / "instance").exists()
    deps = admin.get(f"/api/v1/runs/{run_id}/deployments").json()
    assert deps[0]["status"] == "destroyed" and "lost" in deps[0]["details"]


@pytest.mark.parametrize(
    ("mode", "why"),
    [("quota", "provisioning failed: quota exceeded"), ("crash", "internal error: RuntimeError: a bug")],
)
def test_a_failed_provision_leaves_nothing_and_fails_the_run(tmp_path: Path, mode: str, why: str) -> None:
    s = Server(tmp_path / "home", POLL_SECONDS="0.1", PROVIDER_MODULES=PROVIDERS, PYTHONPATH=PYPATH,
               DEPLOYMENT_POLL_SECONDS="0.2", FAKE_PROVISION_FAIL=mode)  # fmt: skip
    s.start()
    try:
        with s.client(s.admin_key) as admin:
            run_id = admin.post("/api/v1/runs", json={"pipeline": docs()}).json()["id"]
            assert wait_status(admin, run_id, timeout=120) == "failed"
            run = admin.get(f"/api/v1/runs/{run_id}").json()
            assert why in run["details"]
            deps = admin.get(f"/api/v1/runs/{run_id}/deployments").json()
            assert [(d["name"], d["status"], d["provisioned"]) for d in deps] == [(DEP, "destroyed", None)]
            events = admin.get(f"/api/v1/runs/{run_id}/events").json()
            skipped = {e["step"] for e in events if e["type"] == "step.skipped"}
            assert skipped == {"report/hop"}  # waited for the remote step, which could not run
        workdir = s.home / "deployments" / run_id / DEP
        assert not (workdir / "instance").exists()  # what the failed provision created is gone
        assert (workdir.parent / "teardowns.log").read_text() == f"{DEP}\n"  # torn down, also after a crash
    finally:
        s.stop()


def test_plan_out_to_a_folder_writes_the_plan_and_bundles_and_a_json_file_only_the_plan(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(docs()))
    env = {
        **os.environ,
        "PROVIDER_MODULES": PROVIDERS,
        "PYTHONPATH": PYPATH,
        "MLOPS_HOME": str(tmp_path / "h"),
    }
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "plan", str(spec), "--out"]
    text = subprocess.run(
        [*argv, str(tmp_path / "out")], capture_output=True, text=True, env=env, check=False
    )
    assert text.returncode == 0, text.stderr
    assert "0.25" in text.stdout and "terraform_data" in text.stdout  # the deployments and their cost
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [DEP, "plan.json"]
    one = subprocess.run(
        [*argv, str(tmp_path / "p.json")], capture_output=True, text=True, env=env, check=False
    )
    assert one.returncode == 0 and sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".json") == [
        "p.json",
        "spec.json",
    ]


def test_mlops_run_refuses_steps_placed_elsewhere(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(docs()))
    env = {
        **os.environ,
        "PROVIDER_MODULES": PROVIDERS,
        "PYTHONPATH": PYPATH,
        "MLOPS_HOME": str(tmp_path / "h"),
    }
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "run", str(spec)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2 and "placed on k3s" in done.stderr and "train/hop" in done.stderr
    assert not (tmp_path / "h" / "runs").exists()  # nothing ran
    # the meta step's own target wins over the launch's: --target local does not move it here
    local = subprocess.run([*argv, "--target", "local"], capture_output=True, text=True, env=env, check=False)
    assert local.returncode == 2 and "set the step's `target:` to local" in " ".join(local.stderr.split())
