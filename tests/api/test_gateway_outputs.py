"""Through a live gateway: a step leaving a FIFO or a link to /dev/zero fails its run (it used to hang a
worker for good, cancel did nothing, and a restart hung again), and cancel stops a long collection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server, wait_status


def leaving(name: str, script: str, out_type: str) -> list[dict[str, Any]]:
    """A command playbook running `python3 -c script OUT` and a pipeline of one such step."""
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {"argv": ["python3", "-c", script, "${{ outputs.y }}"], "outputs": {"y": "out"}},
            "outputs": {"y": {"type": out_type}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": f"{name}-run", "version": "1.0.0"},
        "spec": {"steps": [{"id": "leave", "uses": f"playbook/{name}"}]},
    }
    return [playbook, pipeline]


def test_special_outputs_fail_the_run_instead_of_hanging(server: Server, admin: httpx.Client) -> None:
    cases = [
        ("fifo-json", "import os, sys; os.mkfifo(sys.argv[1])", "json", "'out' is a FIFO"),
        ("fifo-file", "import os, sys; os.mkfifo(sys.argv[1])", "file", "'out' is a FIFO"),
        ("zero", "import os, sys; os.symlink('/dev/zero', sys.argv[1])", "file", "(to '/dev/zero')"),
        ("root", "import os, sys; os.symlink('/', sys.argv[1])", "directory", "(to '/')"),
    ]
    runs = {}
    for name, script, out_type, _ in cases:
        r = admin.post("/pipelines/deploy", json={"pipeline": leaving(name, script, out_type)})
        assert r.status_code == 202, r.text
        runs[name] = r.json()["pipeline_id"]
    for name, _, out_type, expected in cases:
        assert wait_status(admin, runs[name], 120) == "failed"
        details = admin.get(f"/pipelines/{runs[name]}/status").json()["details"]
        assert f"output 'y' ({out_type})" in details and expected in details, details
    stored = [p for p in (server.home / "artifacts").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in stored) < 1 << 20


def test_cancel_stops_a_long_collection(server: Server, admin: httpx.Client) -> None:
    script = (
        "import os, sys; os.mkdir(sys.argv[1]); "
        "[open(os.path.join(sys.argv[1], str(i)), 'w').write(str(i)) for i in range(12000)]"
    )
    run_id = admin.post("/api/v1/runs", json={"pipeline": leaving("wide", script, "directory")}).json()["id"]
    staging = server.home / "artifacts" / ".staging"
    deadline = time.monotonic() + 120
    while not any(Path(staging).glob("*")):  # the copy into the store has begun
        assert admin.get(f"/api/v1/runs/{run_id}").json()["status"] in {"queued", "running"}
        assert time.monotonic() < deadline, "the outputs were never copied"
        time.sleep(0.01)
    r = admin.post(f"/api/v1/runs/{run_id}/cancel")
    assert r.status_code == 200
    assert wait_status(admin, run_id, 60) == "cancelled"
    deadline = time.monotonic() + 30
    while any(staging.glob("*")):  # the partial copy is removed as the Runner stops
        assert time.monotonic() < deadline, list(staging.glob("*"))
        time.sleep(0.05)
