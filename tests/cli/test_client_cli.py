"""`mlops login|logout`, `mlops runs ...` and `mlops deploy` against a live gateway (`mlops up` on a free
port), each command run as a real process. The key must never appear in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len

from tests.api.conftest import Server, free_port, sleeper, wait_status
from tests.conftest import FIXTURES, CliResult

Mlops = Callable[..., CliResult]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("cli-gw") / "home", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def logged_in(gw: Server, mlops: Mlops) -> Mlops:
    r = mlops("login", f"{gw.url}/?token={gw.admin_key}")
    assert r.code == 0, r
    return mlops


def _clean(key: str, *results: CliResult) -> None:
    for r in results:
        assert key not in r.stdout and key not in r.stderr, r


def _spec(tmp_path: Path, name: str, steps: list[tuple[str, float]], fail: str | None = None) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(sleeper(name, steps, fail), sort_keys=False), encoding="utf-8")
    return path


def _with_stdin(home: Path, text: str, *args: str) -> CliResult:
    env = {**os.environ, "MLOPS_HOME": str(home), "PYTHONPATH": str(FIXTURES), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", *args],
        input=text,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return CliResult(proc)


def test_without_a_credential_every_client_command_says_how_to_get_one(mlops: Mlops, home: Path) -> None:
    for args in (["runs", "list"], ["runs", "show", "x"], ["deploy", "pipeline/iris-classifier"]):
        r = mlops(*args)
        assert r.code == 2, r
        assert "no gateway credential stored" in r.stderr
        assert "mlops up" in r.stderr and "mlops login URL" in r.stderr
        assert str(home / "credentials.json") in r.stderr.replace("\n", "")


def test_an_unreachable_gateway_is_named(mlops: Mlops) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = mlops("runs", "list", env={"MLOPS_URL": url, "MLOPS_TOKEN": "mlk_secret_value"})
    assert r.code == 2, r
    assert f"cannot reach the gateway at {url}" in r.stderr and "mlops up" in r.stderr
    _clean("mlk_secret_value", r)
    r = mlops("login", url, "--token", "mlk_secret_value")
    assert r.code == 2 and f"cannot reach the gateway at {url}" in r.stderr, r


def test_login_checks_the_credential_then_stores_it_privately(gw: Server, mlops: Mlops, home: Path) -> None:
    creds = home / "credentials.json"
    bad = mlops("login", f"{gw.url}/?token=mlk_0000_wrong")
    assert bad.code == 2, bad
    assert "the gateway refused the credential: unknown or revoked API key" in bad.stderr
    assert not creds.exists()
    not_gateway = mlops("login", f"{gw.url}/docs", "--token", gw.admin_key)
    assert not_gateway.code == 2 and "no MLOps gateway answers" in not_gateway.stderr, not_gateway
    ok = mlops("login", f"{gw.url}/?token={gw.admin_key}")
    assert ok.code == 0, ok
    assert f"logged in to {gw.url} as admin" in ok.stderr
    assert creds.stat().st_mode & 0o777 == 0o600
    assert json.loads(creds.read_text()) == {
        "url": gw.url,
        "key": gw.admin_key,
        "source": "login",
        "scopes": "admin,read,write",  # the admin marker: logout asks for --force even with the gateway away
    }
    piped = _with_stdin(home, gw.admin_key + "\n", "login", gw.url + "/", "--json")
    assert piped.code == 0, piped
    assert piped.json()["url"] == gw.url and "admin" in piped.json()["scopes"]
    _clean(gw.admin_key, bad, not_gateway, ok, piped)


def test_deploy_a_file_and_wait_then_inspect_the_run(gw: Server, logged_in: Mlops, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "cli-ok", [("a", 0.1), ("b", 0.11)])
    done = logged_in("deploy", str(spec), "--wait", "--json")
    assert done.code == 0, done
    run = done.json()
    assert run["status"] == "succeeded" and run["steps"] == ["a", "b"]
    assert "✓ a" in done.stderr and "✓ b" in done.stderr and f"run {run['id']} succeeded" in done.stderr
    shown = logged_in("runs", "show", run["id"])
    assert shown.code == 0 and "succeeded" in shown.stdout and "a, b" in shown.stdout, shown
    listed = logged_in("runs", "list", "--json", "--status", "succeeded")
    assert run["id"] in [r["id"] for r in listed.json()["items"]]
    table = logged_in("runs", "list")
    assert run["id"] in table.stdout and "pipeline/cli-ok@1.0.0" in table.stdout, table
    for args in (["runs", "list"], ["runs", "events", run["id"]]):  # one line per row at 80 columns
        narrow = logged_in(*args, env={"COLUMNS": "80"})
        assert narrow.code == 0, narrow
        assert max(cell_len(line) for line in narrow.stdout.splitlines()) <= 80, narrow.stdout
    narrow = logged_in("runs", "list", env={"COLUMNS": "80"}).stdout
    assert any(run["id"] in line and "succeeded" in line for line in narrow.splitlines()), narrow
    logs = logged_in("runs", "logs", run["id"])
    assert logs.code == 0 and "step.finished a" in logs.stdout and "step.finished b" in logs.stdout, logs
    events = logged_in("runs", "events", run["id"], "--json").json()
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and {"run.started", "step.finished"} <= {e["type"] for e in events}
    _clean(gw.admin_key, done, shown, listed, table, logs)


def test_deploy_wait_exits_1_when_the_run_fails(gw: Server, logged_in: Mlops, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "cli-fail", [("a", 0.1), ("b", 0.11)], fail="b")
    r = logged_in("deploy", str(spec), "--wait")
    assert r.code == 1, r
    assert "✓ a" in r.stderr and "✗ b" in r.stderr and "failed" in r.stderr


def test_logs_follow_streams_server_sent_events_to_the_end(
    gw: Server, logged_in: Mlops, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "cli-follow", [("a", 0.3), ("b", 0.31), ("c", 0.32)])
    queued = logged_in("deploy", str(spec), "--json")
    assert queued.code == 0 and queued.json()["status"] in {"queued", "running"}, queued
    run_id = queued.json()["id"]
    r = logged_in("runs", "logs", run_id, "--follow", "--json")
    assert r.code == 0, r
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[-1] == {"type": "end", "data": {"status": "succeeded", "details": None}}
    started = [e["step"] for e in lines if e["type"] == "step.started"]
    assert started == ["a", "b", "c"]
    text = logged_in("runs", "logs", run_id, "-f", "--type", "step.finished")
    assert text.code == 0 and text.stdout.count("step.finished") == 3, text
    assert f"run {run_id} succeeded" in text.stderr


def test_cancel_and_retry(gw: Server, logged_in: Mlops, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "cli-long", [("slow", 60.0)])
    run_id = logged_in("deploy", str(spec), "--json").json()["id"]
    cancelled = logged_in("runs", "cancel", run_id)
    assert cancelled.code == 0 and f"run {run_id}" in cancelled.stderr, cancelled
    with gw.client(gw.admin_key) as admin:
        assert wait_status(admin, run_id) == "cancelled"
        again = logged_in("runs", "cancel", run_id)
        assert again.code == 2, again
        assert "already" in again.stderr and f"{gw.url}/api/v1/runs/{run_id}/cancel" in again.stderr
        retried = logged_in("runs", "retry", run_id, "--json")
        assert retried.code == 0, retried
        assert retried.json()["retry_of"] == run_id and retried.json()["id"] != run_id
        assert logged_in("runs", "cancel", retried.json()["id"]).code == 0
        assert wait_status(admin, retried.json()["id"]) == "cancelled"


def test_refusals_show_the_servers_message_and_where(gw: Server, logged_in: Mlops, tmp_path: Path) -> None:
    missing = logged_in("runs", "show", "no-such-run")
    assert missing.code == 2 and "no run no-such-run" in missing.stderr, missing
    assert f"GET {gw.url}/api/v1/runs/no-such-run" in missing.stderr
    unknown = logged_in("deploy", "pipeline/does-not-exist")
    assert unknown.code == 2 and "unknown pipeline 'does-not-exist'" in unknown.stderr, unknown
    spec = _spec(tmp_path, "cli-params", [("a", 0.1)])
    bad_param = logged_in("deploy", str(spec), "--set", "nope=1", "--json")
    assert bad_param.code == 2, bad_param
    problems = bad_param.json()["problems"]
    assert any("nope" in p["what"] and "parameters" in p["where"] for p in problems), problems
    neither = logged_in("deploy", "no/such/file.yaml")
    assert neither.code == 2 and "neither a file nor a ref" in neither.stderr, neither
    with gw.client(gw.admin_key) as admin:
        reader = admin.post("/api/v1/keys", json={"name": "cli-reader", "scopes": ["read"]}).json()["key"]
    env = {"MLOPS_URL": gw.url, "MLOPS_TOKEN": reader}
    assert logged_in("runs", "list", env=env).code == 0
    forbidden = logged_in("runs", "cancel", "no-such-run", env=env)
    assert forbidden.code == 2 and "lacks the write scope" in forbidden.stderr, forbidden
    refused = logged_in("runs", "list", env={"MLOPS_URL": gw.url, "MLOPS_TOKEN": "garbage"})
    assert refused.code == 2 and "refused the credential: invalid token" in refused.stderr, refused
    _clean(reader, forbidden, refused)
    _clean(gw.admin_key, missing, unknown, bad_param)


def test_env_overrides_and_logout(gw: Server, mlops: Mlops, home: Path) -> None:
    creds = home / "credentials.json"
    via_env = mlops("runs", "list", "--json", env={"MLOPS_URL": gw.url + "/", "MLOPS_TOKEN": gw.admin_key})
    assert via_env.code == 0 and "items" in via_env.json(), via_env
    assert not creds.exists()
    elsewhere = f"http://127.0.0.1:{free_port()}"
    nothing = mlops("runs", "list", env={"MLOPS_URL": elsewhere})
    assert nothing.code == 2 and f"no credential for {elsewhere}: none is stored in" in nothing.stderr
    assert f"mlops login {elsewhere}" in nothing.stderr, nothing
    with gw.client(gw.admin_key) as admin:
        reader = admin.post("/api/v1/keys", json={"name": "cli-logout", "scopes": ["read"]}).json()["key"]
    assert mlops("login", f"{gw.url}/?token={reader}").code == 0
    other = mlops("runs", "list", env={"MLOPS_URL": elsewhere})  # the stored key is not sent elsewhere
    assert (
        other.code == 2 and f"no credential for {elsewhere}: the stored one is for {gw.url}" in other.stderr
    )
    out = mlops("logout")  # a read key: nothing to lose
    assert out.code == 0 and "forgot the credential" in out.stderr, out
    assert not creds.exists()
    assert mlops("runs", "list").code == 2
    assert mlops("logout").code == 0
    # the admin key `mlops up` stored is its only copy: logout and a login with another key refuse
    creds.write_text(json.dumps({"url": gw.url, "key": gw.admin_key}))
    kept = mlops("logout")
    assert kept.code == 2 and "only copy" in kept.stderr and creds.exists(), kept
    replaced = mlops("login", gw.url, "--token", "mlk_other_key")
    assert replaced.code == 2 and "only copy" in replaced.stderr, replaced
    assert mlops("logout", "--force").code == 0 and not creds.exists()
    _clean(gw.admin_key, via_env, other, out, kept, replaced)
    _clean(reader, nothing, other, out)


def test_logout_and_login_keep_any_stored_admin_key_without_force(
    gw: Server, mlops: Mlops, home: Path
) -> None:
    creds = home / "credentials.json"
    home.mkdir(parents=True, exist_ok=True)
    creds.write_text(json.dumps({"url": gw.url, "key": gw.admin_key}))  # as `mlops up` stores it
    again = mlops("login", f"{gw.url}/?token={gw.admin_key}")  # the same key: still `mlops up`'s only copy
    assert again.code == 0, again
    assert "source" not in json.loads(creds.read_text())
    kept = mlops("logout")
    assert kept.code == 2 and "the admin key `mlops up` created, its only copy" in kept.stderr, kept
    assert "--force" in kept.stderr and creds.exists()
    # another admin key, logged in: the gateway says it is admin-scoped
    with gw.client(gw.admin_key) as admin:
        other_admin = admin.post("/api/v1/keys", json={"name": "cli-admin2", "scopes": ["admin"]}).json()
        reader = admin.post("/api/v1/keys", json={"name": "cli-reader2", "scopes": ["read"]}).json()["key"]
    forced = mlops("login", gw.url, "--token", other_admin["key"], "--force")
    assert forced.code == 0, forced
    stored = json.loads(creds.read_text())
    assert stored["source"] == "login" and stored["scopes"] == "admin,read,write", stored
    kept = mlops("logout", "--json")
    assert kept.code == 2 and "an admin key" in kept.json()["problems"][0]["what"], kept
    replaced = mlops("login", gw.url, "--token", reader)
    assert replaced.code == 2 and "an admin key" in replaced.stderr and creds.exists(), replaced
    # the gateway away: the marker the login stored decides
    creds.write_text(json.dumps(stored | {"url": f"http://127.0.0.1:{free_port()}"}))
    assert mlops("logout").code == 2 and creds.exists()
    creds.write_text(json.dumps(stored | {"url": f"http://127.0.0.1:{free_port()}", "scopes": "read"}))
    assert mlops("logout").code == 0 and not creds.exists()
    # a revoked admin key is not worth keeping
    creds.write_text(json.dumps(stored))
    with gw.client(gw.admin_key) as admin:
        assert admin.delete(f"/api/v1/keys/{other_admin['id']}").status_code == 200
    gone = mlops("logout")
    assert gone.code == 0 and not creds.exists(), gone
    creds.write_text(json.dumps(stored | {"key": gw.admin_key}))
    assert mlops("logout", "--force").code == 0 and not creds.exists()
    _clean(gw.admin_key, again, kept, forced, replaced, gone)
    _clean(other_admin["key"], kept, forced, replaced)


def _with_outputs(tmp_path: Path, name: str) -> Path:
    docs = sleeper(name, [("a", 0.1)])
    docs[1]["spec"]["outputs"] = {"result": "a.out"}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return path


def test_wait_json_prints_one_json_document_and_no_table(
    gw: Server, logged_in: Mlops, tmp_path: Path
) -> None:
    done = logged_in("deploy", str(_with_outputs(tmp_path, "cli-json-out")), "--wait", "--json")
    assert done.code == 0, done
    run = done.json()  # the whole of stdout is one JSON document
    assert run["status"] == "succeeded" and "result" in run["outputs"], run
    assert f"run {run['id']} succeeded" in done.stderr
    again = logged_in("runs", "retry", run["id"], "--wait", "--json")
    assert again.code == 0, again
    assert again.json()["retry_of"] == run["id"] and again.json()["status"] == "succeeded"
    table = logged_in("runs", "retry", run["id"], "--wait")  # without --json the outputs table is shown
    assert table.code == 0 and "result" in table.stdout, table


def test_logs_json_ends_with_the_end_line_once_the_run_ended(
    gw: Server, logged_in: Mlops, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "cli-logs-end", [("a", 0.1)])
    run = logged_in("deploy", str(spec), "--wait", "--json").json()
    r = logged_in("runs", "logs", run["id"], "--json")
    assert r.code == 0, r
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines[-1] == {"type": "end", "data": {"status": "succeeded", "details": None}}, lines
    assert lines[0]["type"] == "run.started"
    only = logged_in("runs", "logs", run["id"], "--json", "--type", "step.finished")
    assert [e["type"] for e in map(json.loads, only.stdout.splitlines())] == ["step.finished", "end"]
    text = logged_in("runs", "logs", run["id"])
    assert text.code == 0 and f"run {run['id']} succeeded" in text.stderr, text
    long = logged_in("deploy", str(_spec(tmp_path, "cli-logs-going", [("slow", 60.0)])), "--json").json()
    going = logged_in("runs", "logs", long["id"], "--json")
    assert going.code == 0 and '"end"' not in going.stdout, going  # still going: no end line
    assert logged_in("runs", "cancel", long["id"]).code == 0


def test_an_unknown_logs_type_is_an_error_not_silence(gw: Server, logged_in: Mlops, tmp_path: Path) -> None:
    for args in (["--type", "logs"], ["--type", "logs", "--follow"]):
        r = logged_in("runs", "logs", "some-run", *args)
        assert r.code == 2, r
        assert "unknown event type 'logs'" in r.stderr and "--type" in r.stderr and "step.failed" in r.stderr


def test_deploy_warns_when_a_python_step_module_sits_beside_the_spec(
    gw: Server, logged_in: Mlops, tmp_path: Path
) -> None:
    (tmp_path / "local_steps.py").write_text("def f(*, ctx):\n    return {}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: local-py, version: 1.0.0}
spec: {runtime: python, python: {entrypoint: "local_steps:f"}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: local-py-pipe, version: 1.0.0}
spec: {steps: [{id: a, uses: playbook/local-py}]}
"""
    )
    r = logged_in("deploy", str(spec), "--json")
    assert "module 'local_steps' is beside the spec" in r.stderr, r
    (tmp_path / "other").mkdir()
    quiet = logged_in("deploy", str(_spec(tmp_path / "other", "cli-quiet", [("a", 0.01)])), "--json")
    assert "beside the spec" not in quiet.stderr
    for result in (r, quiet):
        if result.code == 0:
            logged_in("runs", "cancel", result.json()["id"])
