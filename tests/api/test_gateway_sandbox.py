"""Steps deployed through a live gateway are confined: a write-scoped key cannot turn a step into a way to
read the gateway's admin key, signing key or database password; nothing a step started outlives a gateway
or worker killed with -9."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from mlops_nocode.runtime.sandbox import resolve
from tests.api.conftest import Server, wait_status
from tests.runtime.test_step_cleanup import spawning_pipeline, step_processes, wait_all_gone

pytestmark = pytest.mark.skipif(not resolve().confined, reason="this kernel has no Landlock")

# Reads the gateway's files by their absolute paths and prints them and its whole environment; writes
# what it could read as its output too.
THIEF = """
import os, sys
home, out = sys.argv[1], sys.argv[2]
loot = []
for name in ("credentials.json", "secret_key", "mlops.db"):
    try:
        loot.append(open(os.path.join(home, name), "rb").read(300).decode("utf-8", "replace"))
        print("READ", name, loot[-1])
    except OSError as e:
        print("cannot read", name, e)
print("ENV", dict(os.environ))
open(out, "w").write(repr(loot) + repr(dict(os.environ)))
"""


def thief(home: Path) -> list[dict[str, Any]]:
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "thief", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {
                "argv": [sys.executable, "-c", THIEF, str(home), "${{ outputs.loot }}"],
                "outputs": {"loot": "loot.txt"},
            },
            "outputs": {"loot": {"type": "text"}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "steal", "version": "1.0.0"},
        "spec": {"steps": [{"id": "steal", "uses": "playbook/thief"}], "outputs": {"loot": "steal.loot"}},
    }
    return [playbook, pipeline]


def test_a_write_key_cannot_read_the_gateways_secrets_through_a_step(
    server: Server, admin: httpx.Client
) -> None:
    created = admin.post("/api/v1/keys", json={"name": "writer-sandbox", "scopes": ["write"]})
    assert created.status_code == 201, created.text
    with server.client(created.json()["key"]) as writer:
        r = writer.post("/pipelines/deploy", json={"pipeline": thief(server.home)})
        assert r.status_code == 202, r.text
        run_id = r.json()["pipeline_id"]
    assert wait_status(admin, run_id, 120) == "succeeded"
    seen = [
        admin.get(f"/api/v1/runs/{run_id}").text,
        admin.get(f"/api/v1/runs/{run_id}/events").text,
        admin.get(f"/pipelines/{run_id}/status").text,
        admin.get(f"/api/v1/runs/{run_id}/logs").text,
        admin.get("/api/v1/runs").text,
    ]
    assert "cannot read credentials.json" in seen[1]  # the step did try
    secrets = [server.admin_key, (server.home / "secret_key").read_text().strip()]
    password = urlsplit(server.env.get("DATABASE_URL", "")).password
    if password:
        secrets.append(password)
    for secret in secrets:
        assert not any(secret in text for text in seen)
    logs = list((server.home / "runs" / run_id / "steps").glob("*.log"))
    assert logs and not any(s in log.read_text() for log in logs for s in secrets)


def test_a_spec_cannot_name_the_gateways_own_variables_as_its_secrets(
    server: Server, admin: httpx.Client
) -> None:
    """`${{ secrets.DATABASE_URL }}` resolves only from the secret store, never from the worker's own
    environment (on PostgreSQL that variable holds the database password)."""
    docs = thief(server.home)
    docs[1]["spec"]["steps"][0]["with"] = {"db": "${{ secrets.DATABASE_URL }}"}
    docs[0]["spec"]["parameters"] = {"type": "object", "properties": {"db": {"type": "string"}}}
    docs[0]["spec"]["command"]["argv"].append("${{ params.db }}")
    r = admin.post("/pipelines/deploy", json={"pipeline": docs})
    assert r.status_code == 202, r.text
    run_id = r.json()["pipeline_id"]
    assert wait_status(admin, run_id, 120) == "failed"
    details = admin.get(f"/pipelines/{run_id}/status").json()["details"]
    assert "secret 'DATABASE_URL' is not set" in details


@pytest.mark.parametrize("killed", ["gateway", "worker"])
def test_nothing_a_step_started_survives_kill_9_of_its_gateway_or_worker(tmp_path: Path, killed: str) -> None:
    io = tmp_path / "io"  # where the steps say their pids (tmp_path is granted to steps in tests)
    io.mkdir()
    server = Server(tmp_path / "home", WORKERS="1" if killed == "gateway" else "0", POLL_SECONDS="0.1")
    server.start()
    worker = None
    try:
        if killed == "worker":
            worker = subprocess.Popen(
                [sys.executable, "-m", "mlops_nocode.cli.main", "worker"],
                env=server.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with server.client(server.admin_key) as c:
            docs = list(yaml.safe_load_all(spawning_pipeline(io)))
            r = c.post("/pipelines/deploy", json={"pipeline": docs})
            assert r.status_code == 202, r.text
        pids = step_processes(io)
        victim = server.proc if worker is None else worker
        assert victim is not None
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        wait_all_gone(pids)
    finally:
        if worker is not None:
            with contextlib.suppress(OSError):
                worker.kill()
            worker.wait()
        server.stop()
