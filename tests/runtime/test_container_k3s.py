"""Container steps placed on a k3s target: the Runner (as in its Job's pod) runs each attempt as a
Kubernetes Job of the step's image, through a real Runner, against a FAKE Kubernetes API server on
loopback (tests/runtime/k8s_fake.py: the documented shapes of the endpoints called; no cluster runs
here, so this is not an end-to-end pass). Checked: outputs through the shared work volume, the Job's
shape (schema-validated), secrets by reference only, failures with the container's exit code, timeout
and cancel delete the Job, hostile parameter values arrive as data."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.providers.base import Offer
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from tests.runtime.k8s_fake import FakeKube, Script, fake_kube, pod_env
from tests.runtime.test_container import docs, plan_of

TOKEN = "sa-token-7f3c1e9a"  # the fake's credentials


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKube]:
    with fake_kube(TOKEN) as k:
        for key, value in pod_env(tmp_path, tmp_path / "sa", k).items():
            monkeypatch.setenv(key, value)
        yield k


def on_k3s(plan: Plan) -> Plan:
    placed = {"provider": "k3s", "deployment": "k3s-0", "offer": None, "price_per_hour": 0.0}
    steps = [dataclasses.replace(s, placement=placed) if s.id == "c" else s for s in plan.steps]
    return dataclasses.replace(plan, steps=tuple(steps))


def run(plan: Plan, root: Path, **kw: Any) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    return Runner(on_k3s(plan), home=root / "home", sink=events.append, **kw).run(), events


def mount(job: dict[str, Any], root: Path, path: str) -> Path:
    """Where a volume mount of the Job's container lies on the (fake) shared volume."""
    c = job["spec"]["template"]["spec"]["containers"][0]
    m = next(m for m in c["volumeMounts"] if m["mountPath"] == path)
    return root / m["subPath"]


def upper_copy(root: Path) -> Any:
    def effect(job: dict[str, Any]) -> None:  # the container: reads its input, writes its output
        text = mount(job, root, "/mlops/inputs/f").read_text()
        (mount(job, root, "/mlops/out") / "r.txt").write_text(text.upper())

    return effect


def box(**step: Any) -> Plan:
    return plan_of(
        docs(
            {
                "image": "registry.example/tools/upper@sha256:" + "a" * 64,
                "command": ["/bin/upper"],
                "args": [
                    "--who",
                    "${{ params.who }}",
                    "--in",
                    "${{ inputs.f }}",
                    "--out",
                    "${{ outputs.r }}",
                ],
                "env": {"AUTH": "Bearer ${{ secrets.TOK }}", "PLAIN": "${{ params.who }}"},
                "workdir": "/mlops/out",
                "outputs": {"r": "r.txt"},
            },
            extra={
                "inputs": {"f": {"type": "file"}},
                "outputs": {"r": {"type": "text"}},
                "parameters": {"type": "object", "properties": {"who": {"type": "string", "default": "you"}}},
                "secrets": ["TOK"],
                "resources": {"cpu": 2, "memory": "3Gi", "gpu": 1},
            },
            step={"inputs": {"f": "make.f"}, **step},
        )
    )


def test_a_step_job_runs_with_its_outputs_and_the_job_is_deleted(kube: FakeKube, tmp_path: Path) -> None:
    kube.script = Script(log="hello from the pod\n", effect=upper_copy(tmp_path))
    r, events = run(box(), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    assert r.status == "succeeded", r.summary()
    assert r.steps["c"].outputs["r"]["value"] == "FROM-HOST\n"
    lines = [e.data["line"] for e in events if e.type == "log"]
    assert "hello from the pod" in lines
    assert not kube.refused
    [job] = kube.created
    assert kube.deleted == [(job["metadata"]["name"], "Foreground")] and not kube.jobs
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["image"] == "registry.example/tools/upper@sha256:" + "a" * 64
    assert c["command"] == ["/bin/upper"] and c["workingDir"] == "/mlops/out"
    assert c["args"] == ["--who", "you", "--in", "/mlops/inputs/f", "--out", "/mlops/out/r.txt"]
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "3Gi", "nvidia.com/gpu": "1"}
    inp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/mlops/inputs/f")
    assert inp["readOnly"] is True and not inp["subPath"].startswith("/")
    env = {e["name"]: e for e in c["env"]}
    assert env["TOK"]["valueFrom"] == {"secretKeyRef": {"name": "step-secrets", "key": "TOK"}}
    assert env["AUTH"]["value"] == "Bearer $(TOK)" and env["PLAIN"]["value"] == "you"
    assert "s3cr3t" not in json.dumps(kube.created) and "s3cr3t" not in json.dumps([e.data for e in events])
    assert spec["automountServiceAccountToken"] is False  # the step never gets the Runner's token
    assert spec["securityContext"]["runAsNonRoot"] in (True, False)
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    term = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["node-1"]
    assert spec["volumes"] == [{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "0b7a-runner-uid"
    assert job["metadata"]["namespace"] == "mlops-r1-k3s-0" and job["spec"]["backoffLimit"] == 0
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["mlops-nocode/role"] == "step" and labels["mlops-nocode/network"] == "none"


def test_a_non_zero_exit_fails_with_the_containers_code(kube: FakeKube, tmp_path: Path) -> None:
    kube.script = Script(exit_code=3, log="boom\n")
    r, _ = run(box(), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    assert r.status == "failed"
    assert r.steps["c"].error == "the container exited with code 3 (see the step's log)"
    assert [d[0] for d in kube.deleted] == [j["metadata"]["name"] for j in kube.created] and not kube.jobs


def test_start_errors_and_image_pull_errors_say_why(kube: FakeKube, tmp_path: Path) -> None:
    kube.script = Script(exit_code=128, reason="StartError", log="")
    r, _ = run(box(), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    assert "the container's command cannot be run in image registry.example" in (r.steps["c"].error or "")
    kube.script = Script(waiting="ErrImagePull")
    r, _ = run(box(), tmp_path / "2", environ={"TOK": "s3cr3t-value-9"})
    error = r.steps["c"].error or ""
    assert error.startswith("the image cannot be pulled (ErrImagePull") and "registry.example" in error, error
    assert not kube.jobs, "every Job is deleted"


def _deleted(kube: FakeKube) -> bool:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if kube.created and not kube.jobs and len(kube.deleted) == len(kube.created):
            return True
        time.sleep(0.05)
    return False


def test_a_timeout_deletes_the_job(kube: FakeKube, tmp_path: Path) -> None:
    kube.script = Script(exit_code=None, log="working\n")
    r, _ = run(box(timeout="2s"), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    assert r.status == "failed" and "timed out after 2s" in (r.steps["c"].error or ""), r.summary()
    assert _deleted(kube), (kube.jobs, kube.deleted)
    assert kube.deleted[0][1] == "Foreground"
    assert kube.created[0]["spec"]["activeDeadlineSeconds"] == 62  # the cluster's own backstop


def test_cancel_deletes_the_job(kube: FakeKube, tmp_path: Path) -> None:
    kube.script = Script(exit_code=None)
    runner = Runner(on_k3s(box()), home=tmp_path / "home", environ={"TOK": "s3cr3t-value-9"})
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    end = time.monotonic() + 60
    while not any(
        "running" in p["status"]["containerStatuses"][0]["state"] for p in list(kube.pods.values())
    ):
        assert time.monotonic() < end, "the step's pod never ran"
        time.sleep(0.05)
    runner.cancel()
    t.join(60)
    assert result and result[0].status == "cancelled"
    assert _deleted(kube) and not kube.pods


@pytest.mark.parametrize(
    "hostile",
    [
        "$(MLOPS_RUN_TOKEN)",
        "'; rm -rf / #\n- evil: {a: b}",
        '${HOME}" } resource "x" "y" { a = "',
        "$$(TOK) `id` \\ \u2028",
    ],
)
def test_hostile_values_arrive_as_data(kube: FakeKube, tmp_path: Path, hostile: str) -> None:
    kube.script = Script(effect=upper_copy(tmp_path))
    r, _ = run(box(**{"with": {"who": hostile}}), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    assert r.status == "succeeded", r.summary()
    c = kube.created[0]["spec"]["template"]["spec"]["containers"][0]
    escaped = hostile.replace("$", "$$")  # Kubernetes turns $$ back into $, and expands no $(VAR)
    assert c["args"][1] == escaped
    assert {e["name"]: e.get("value") for e in c["env"]}["PLAIN"] == escaped


def test_outside_a_pod_it_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_K8S_NODE", raising=False)
    r, _ = run(box(), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    error = r.steps["c"].error or ""
    assert "needs the Runner's pod to be rendered for step Jobs" in error and "MLOPS_K8S_NODE" in error, error


def test_a_refused_token_is_a_precise_failure(kube: FakeKube, tmp_path: Path) -> None:
    (tmp_path / "sa" / "token").write_text("wrong")
    r, _ = run(box(), tmp_path, environ={"TOK": "s3cr3t-value-9"})
    error = r.steps["c"].error or ""
    assert "HTTP 401" in error and "Role the k3s module renders" in error, error
    assert not kube.created


def test_mlops_execute_in_the_pod_runs_the_step_job(kube: FakeKube, tmp_path: Path) -> None:
    """`mlops execute --deployment` (what the Runner's Job runs), as a real process."""
    kube.script = Script(log="from the pod\n", effect=upper_copy(tmp_path))
    offer = Offer("k3s", "gpu-node", 4, 16, 0.0, gpu_type="L4", gpu_count=1).to_json()
    placed = {"provider": "k3s", "deployment": "k3s-0", "offer": offer, "price_per_hour": 0.0}
    plan = box()
    plan = dataclasses.replace(
        plan, steps=tuple(dataclasses.replace(s, placement=placed) for s in plan.steps)
    )
    plan.dump(tmp_path / "plan.json")
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home"), "TOK": "s3cr3t-value-9"}
    argv = [sys.executable, "-m", "mlops_nocode.cli.main", "execute", str(tmp_path / "plan.json")]
    argv += ["--deployment", "k3s-0", "--run-id", "r1", "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded", summary
    assert len(kube.created) == 1 and not kube.jobs
    assert "s3cr3t" not in done.stdout + done.stderr + json.dumps(kube.created)
