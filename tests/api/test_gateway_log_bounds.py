"""Steps flooding their log through a real gateway: runs succeed, their stored `log` events are capped (no
event bloats the database), the gateway's memory stays bounded, and a gateway whose MAX_BODY_BYTES is
smaller than the Runner's batches still gets every run's reports (no event can hold them up)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status
from tests.runtime.test_log_bounds_runs import SECRET, check_flood_logs, flood_docs


def _peak_rss(server: Server) -> int:
    """The gateway process's peak resident memory so far, in bytes (VmHWM)."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def _events(c: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    events, after = [], 0
    while page := c.get(f"/api/v1/runs/{run_id}/events", params={"after": after}).json():
        events += page
        after = page[-1]["seq"]
    return events


def _flood(c: httpx.Client, endless_mib: int, line_mib: int) -> dict[str, list[str]]:
    r = c.post("/pipelines/deploy", json={"pipeline": flood_docs(endless_mib, line_mib)})
    assert r.status_code in (200, 201, 202), r.text
    run_id = r.json()["pipeline_id"]
    assert wait_status(c, run_id, timeout=300) == "succeeded", _events(c, run_id)[-5:]
    lines: dict[str, list[str]] = {"endless": [], "line": []}
    for e in _events(c, run_id):
        assert len(str(e)) < 64 * 1024, f"a stored event of {len(str(e))} characters"
        if e["type"] == "log":
            lines[e["step"]].append(e["data"]["line"])
    return lines


def test_floods_through_the_gateway_succeed_capped_in_bounded_memory(server: Server) -> None:
    with server.client(server.admin_key) as c:
        assert c.put("/api/v1/secrets/TOK", json={"value": SECRET}).status_code in (200, 201)
        check_flood_logs(_flood(c, 1, 1), 1, 1)
        quiet = _peak_rss(server)
        check_flood_logs(_flood(c, 300, 50), 300, 50)
        peak = _peak_rss(server)
    # the gateway's worker read 350 MB of log: its peak grew by a few MiB at most
    assert peak - quiet < 48 << 20, f"peak {peak >> 20} MiB, after a quiet run {quiet >> 20} MiB"


CHATTY = (
    "import sys; w = sys.stdout.write\n"
    "[w(f'{i:04d} ' + 'c' * 995 + '\\n') for i in range(40)]\n"  # 40 events of 1 KB: batches over 8 KiB
    "w('big ' + 'b' * 12_000 + '\\n')\n"  # one event over 8 KiB on its own
    "w('done\\n')\n"
)


@pytest.fixture
def small_bodies(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "home", MAX_BODY_BYTES="8192", RUN_STALE_AFTER="3", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


def test_a_gateway_taking_small_bodies_gets_every_report(small_bodies: Server) -> None:
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "chatty", "version": "1.0.0"},
        "spec": {"runtime": "command", "command": {"argv": [sys.executable, "-c", CHATTY]}},
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "chat", "version": "1.0.0"},
        "spec": {"steps": [{"id": "s", "uses": "playbook/chatty"}]},
    }
    with small_bodies.client(small_bodies.admin_key) as c:
        r = c.post("/pipelines/deploy", json={"pipeline": [playbook, pipeline]})
        assert r.status_code in (200, 201, 202), r.text
        run_id = r.json()["pipeline_id"]
        assert wait_status(c, run_id, timeout=120) == "succeeded"
        events = _events(c, run_id)
    lines = [e["data"]["line"] for e in events if e["type"] == "log"]
    assert lines[:40] == [f"{i:04d} " + "c" * 995 for i in range(40)]
    (note,) = [e["data"] for e in events if e["type"] == "log" and e["data"].get("truncated")]
    assert note["line"].startswith("… [a log event of ") and "too large" in note["line"]
    assert lines[40:] == [note["line"], "done"]
    assert [e["type"] for e in events][-1] == "run.finished"
