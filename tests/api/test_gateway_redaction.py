"""Secret values that hold quotes, backslashes, tabs, line breaks, non-ASCII and emoji, or a whole PEM
key, through a live gateway: stored by the API, shown by real steps in every way a careless step would,
and never seen again in a run, a run listing, the events, the SSE stream, a webhook payload, an
artifact, the run's files or the server's log; also after a worker died with kill -9."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from mlops_nocode.runs.db import Database
from mlops_nocode.runs.service import NewEvent, RunService
from mlops_nocode.runs.vault import SecretStore
from tests.api.conftest import NewDb, Server, wait_status
from tests.api.test_gateway_webhooks import Receiver
from tests.conftest import FIXTURES
from tests.redaction_support import (
    NASTY,
    assert_no_secret_in_data,
    assert_no_secret_in_text,
)

TOKEN = "pa\"ss\\wörd\twith 🔑 and 'quotes'"
PEM = NASTY[4]
SECRETS = {"TOKEN": TOKEN, "PEM_KEY": PEM}

# a command step: prints both secrets (from its environment) every way, writes them into its outputs, and,
# when told to wait, sleeps until a marker file exists (so a test can kill its worker meanwhile)
CODE = (
    "import json, os, sys, time; t, k = os.environ['TOKEN'], os.environ['PEM_KEY']; "
    "print('token:', t); print(json.dumps({'t': t, 'k': k})); print(repr(t)); print(k, flush=True); "
    "open(sys.argv[1], 'w').write(json.dumps({'t': t, 'k': [k]})); open(sys.argv[2], 'w').write(t + k); "
    "wait = sys.argv[3]; [time.sleep(0.05) for _ in iter(lambda: os.path.exists(wait), True)] if wait else 0"
)


def _docs(name: str, wait: str = "") -> list[dict[str, Any]]:
    playbooks = [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": f"{name}-cmd", "version": "1.0.0"},
            "spec": {
                "runtime": "command",
                "secrets": ["TOKEN", "PEM_KEY"],
                "command": {
                    "argv": ["python3", "-c", CODE, "${{ outputs.y }}", "${{ outputs.t }}", wait],
                    "outputs": {"y": "y.json", "t": "t.txt"},
                },
                "outputs": {"y": {"type": "json"}, "t": {"type": "text"}},
            },
        },
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": f"{name}-py", "version": "1.0.0"},
            "spec": {
                "runtime": "python",
                "python": {"entrypoint": "steps:leak"},
                "outputs": {"y": {"type": "json"}, "t": {"type": "text"}},
                "parameters": {
                    "type": "object",
                    "properties": {"secret": {"type": "string"}, "fail": {"type": "boolean"}},
                },
            },
        },
    ]
    steps: list[dict[str, Any]] = [{"id": "cmd", "uses": f"playbook/{name}-cmd"}]
    outputs = {"cy": "cmd.y", "ct": "cmd.t"}
    if not wait:
        for sid, secret, fail in (("tok", "TOKEN", False), ("pem", "PEM_KEY", False), ("bad", "TOKEN", True)):
            with_ = {"secret": f"${{{{ secrets.{secret} }}}}", "fail": fail}
            steps.append({"id": sid, "uses": f"playbook/{name}-py", "with": with_})
        outputs |= {"ty": "tok.y", "tt": "tok.t", "py": "pem.y"}
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": steps, "outputs": outputs},
    }
    return [*playbooks, pipeline]


def _assert_clean_text(text: str, where: str) -> None:
    for secret in SECRETS.values():
        assert_no_secret_in_text(text, secret, where)


def _assert_clean_json(text: str, where: str) -> None:
    _assert_clean_text(text, where)
    for secret in SECRETS.values():
        assert_no_secret_in_data(json.loads(text), secret, where)


def _assert_clean_files(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                _assert_clean_text(path.read_text(encoding="utf-8", errors="replace"), str(path))


def _server(tmp_path: Path, **env: str) -> Server:
    server = Server(
        tmp_path / "home", PYTHONPATH=str(FIXTURES), POLL_SECONDS="0.1", WEBHOOK_BACKOFF="0.2", **env
    )
    server.start()
    with server.client(server.admin_key) as c:
        for name, value in SECRETS.items():
            assert c.put(f"/api/v1/secrets/{name}", json={"value": value}).status_code == 201
    return server


def test_nasty_secrets_never_come_back(tmp_path: Path, new_db: NewDb) -> None:
    receiver = Receiver()
    server = _server(tmp_path, **new_db())
    try:
        with server.client(server.admin_key) as c:
            hook = c.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["run.failed"]})
            assert hook.status_code == 201, hook.text
            run_id = c.post("/api/v1/runs", json={"pipeline": _docs("nasty")}).json()["id"]
            assert wait_status(c, run_id) == "failed"
            run = c.get(f"/api/v1/runs/{run_id}")
            assert "step bad failed" in run.json()["details"]
            outputs = run.json()["outputs"]
            assert outputs["tt"] == "text ***" and set(outputs) == {"cy", "ct", "ty", "tt", "py"}
            events = c.get(f"/api/v1/runs/{run_id}/events")
            lines = [e["data"]["line"] for e in events.json() if e["type"] == "log"]
            assert "token: ***" in lines and any(line.startswith("cut: ") for line in lines), lines
            with c.stream("GET", f"/api/v1/runs/{run_id}/logs") as sse:
                streamed = "".join(sse.iter_text())
            assert "event: end" in streamed
            for block in streamed.split("\n\n"):
                for line in block.splitlines():
                    if line.startswith("data: "):
                        _assert_clean_json(line[len("data: ") :], "SSE")
            for body, where in (
                (run.text, "run"),
                (c.get("/api/v1/runs").text, "run listing"),
                (c.get(f"/pipelines/{run_id}/status").text, "status"),
                (events.text, "events"),
                (c.get(f"/api/v1/runs/{run_id}/artifacts").text, "artifacts"),
            ):
                _assert_clean_json(body, where)
            for name in ("cy", "ct", "ty", "tt", "py"):  # value outputs as stored and downloaded
                download = c.get(f"/api/v1/runs/{run_id}/artifacts/{name}")
                assert download.status_code == 200, download.text
                _assert_clean_text(download.content.decode(), f"artifact {name}")
        receiver.wait(1)
        _assert_clean_json(receiver.received[0][1].decode(), "webhook payload")
        assert json.loads(receiver.received[0][1])["run"]["outputs"]["tt"] == "text ***"
        _assert_clean_files(server.home / "runs", server.home / "artifacts")
        _assert_clean_text(server.log.read_text(errors="replace"), "server log")
    finally:
        server.stop()
        receiver.close()


def test_kill9_mid_step_then_recovery_masks_the_step_log(tmp_path: Path, new_db: NewDb) -> None:
    """The worker dies while the step runs (its log holds the secrets in clear): the run is given up
    (MAX_RUN_ATTEMPTS=1) and the gateway's recovery thread masks what the step left."""
    server = _server(tmp_path, RUN_STALE_AFTER="3", HEARTBEAT_SECONDS="0.2", MAX_RUN_ATTEMPTS="1", **new_db())
    try:
        with server.client(server.admin_key) as c:
            docs = _docs("crash", wait=str(tmp_path / "never"))
            run_id = c.post("/api/v1/runs", json={"pipeline": docs}).json()["id"]
            _wait_log(c, run_id, "token: ***")
        server.kill9()
        assert any(TOKEN in p.read_text() for p in (server.home / "runs").rglob("*.log"))  # in clear
        server.start()
        with server.client(server.admin_key) as c:
            assert wait_status(c, run_id, 60) == "failed"
        _assert_clean_files(server.home / "runs")
    finally:
        server.stop()


def test_kill9_mid_step_then_the_next_attempt_masks_the_old_one(tmp_path: Path, new_db: NewDb) -> None:
    """The run is claimed again after the crash: the worker masks the interrupted attempt's files
    before it keeps them beside the new attempt (`<run>.attempt-1`)."""
    server = _server(tmp_path, RUN_STALE_AFTER="3", HEARTBEAT_SECONDS="0.2", **new_db())
    marker = tmp_path / "go"
    try:
        with server.client(server.admin_key) as c:
            run_id = c.post("/api/v1/runs", json={"pipeline": _docs("again", str(marker))}).json()["id"]
            _wait_log(c, run_id, "token: ***")
        server.kill9()
        marker.write_text("the second attempt ends at once")
        server.start()
        with server.client(server.admin_key) as c:
            assert wait_status(c, run_id, 60) == "succeeded"
        assert (server.home / "runs" / f"{run_id}.attempt-1").is_dir()
        _assert_clean_files(server.home / "runs")
    finally:
        server.stop()


def _wait_log(c: httpx.Client, run_id: str, line: str, timeout: float = 60.0) -> None:
    """Poll the run's events until a log event with `line` arrived (the step wrote it to its log)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = c.get(f"/api/v1/runs/{run_id}/events").json()
        if any(e["type"] == "log" and e["data"].get("line") == line for e in events):
            return
        time.sleep(0.05)
    run = c.get(f"/api/v1/runs/{run_id}").json()
    state = f"{run['status']}: {run['details']}"
    raise AssertionError(f"no log line {line!r} in run {run_id} ({state}): {events}")


def test_reports_are_redacted_again_by_the_gateway(tmp_path: Path) -> None:
    """Whatever a Runner reports (an old one, a buggy one), the gateway masks the vault's secrets of the
    run before storing events, details and outputs."""
    db = Database(f"sqlite:///{tmp_path / 'mlops.db'}")
    db.migrate(tmp_path)
    try:
        vault = SecretStore(db, "k" * 48)
        for name, value in SECRETS.items():
            vault.put(name, value)
        service = RunService(db)
        service.secret_values = vault.values
        run_id = service.create(_docs("reported"))["id"]
        assert service.claim("w1") is not None
        leaky = {"line": f"x {TOKEN} y", "nested": [json.dumps({"k": PEM})], TOKEN: PEM.splitlines()[1]}
        service.report(run_id, "w1", 1, [NewEvent("log", "cmd", leaky, 1.0)], None)
        assert service.finish(run_id, "w1", "failed", f"boom {TOKEN!r}", {"o": [TOKEN, PEM]}, None, 1)
        stored = service.get(run_id)
        for secret in SECRETS.values():
            assert_no_secret_in_data(service.events(run_id), secret, "stored events")
            assert_no_secret_in_data(stored, secret, "stored run")
        assert service.events(run_id)[0]["data"]["line"] == "x *** y"
    finally:
        db.close()


def test_secret_values_that_would_break_runs_or_leak_are_refused(tmp_path: Path) -> None:
    server = Server(tmp_path / "home", WORKERS="0")
    server.start()
    try:
        with server.client(server.admin_key) as c:
            for value, what in (
                ("with a NUL \0 inside", "NUL character"),
                ("abc", "cannot be redacted"),
                ("é" * 40_000, "at most 65536 bytes"),
            ):
                r = c.put("/api/v1/secrets/BAD", json={"value": value})
                assert r.status_code == 422, r.text
                (problem,) = r.json()["detail"]
                assert (
                    problem["loc"] == ["body", "value"]
                    and what in problem["msg"]
                    and "fix:" in problem["msg"]
                )
            assert c.get("/api/v1/secrets").json() == []  # nothing was stored
            assert c.put("/api/v1/secrets/GOOD", json={"value": "abcd"}).status_code == 201
    finally:
        server.stop()
