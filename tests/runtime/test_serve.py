"""serve steps through a real Runner: a real service process (uvicorn) answering on loopback, its endpoint
output, the registry, secrets and routes reaching it, confinement, stop at the run's end (no orphan),
`keep`, a factory that fails, a health path that never answers, a name already taken."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import SpecError, load_text
from tests.conftest import none_left

SECRET = "serve-s3cr3t-value-77"


def playbook(section: str, params: str = "{}", extra: str = "") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: svc, version: 1.0.0}}
spec:
  runtime: serve
  serve:
{textwrap.indent(textwrap.dedent(section).strip(), "    ")}
  outputs: {{endpoint: {{type: endpoint}}}}
  parameters: {{type: object, properties: {params}}}
{textwrap.indent(textwrap.dedent(extra).strip(), "  ")}
"""


def plan_of(pb: str, with_: dict[str, Any] | None = None) -> Plan:
    """The plan of a pipeline whose one step `web` uses playbook `pb` (SpecError when invalid)."""
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: web, uses: playbook/svc, with: {json.dumps(with_ or {})}}}
"""
    return compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))


def run(
    pb: str, with_: dict[str, Any] | None = None, watch: Callable[[Event], None] | None = None, **kw: Any
) -> tuple[RunResult, list[Event]]:
    """Run `pb` as step `web`; every event is collected, and shown to `watch` as it happens."""
    events: list[Event] = []

    def sink(e: Event) -> None:
        events.append(e)
        if watch is not None:
            watch(e)

    return Runner(plan_of(pb, with_), sink=sink, **kw).run(), events


def test_service_answers_then_stops_at_the_runs_end(home: Path) -> None:
    pb = playbook(
        """
        app: serveapps:echo
        name: "${{ params.name }}"
        env: {SERVE_TOKEN: "${{ secrets.SERVE_TOKEN }}"}
        """,
        params="{name: {type: string}, probe: {type: string}}",
        extra="secrets: [SERVE_TOKEN]",
    )
    seen: dict[str, Any] = {}

    def sink(e: Event) -> None:  # while the run is still going, the service answers
        if e.type == "step.finished" and not seen:
            svc = sv.load(home, "echo-one")
            assert svc is not None
            seen["svc"] = svc
            seen["info"] = httpx.get(svc.url + "/info", timeout=10).json()
            seen["record"] = (home / "serving" / "echo-one" / "service.json").read_text()

    probe = str(home / "serving" / "echo-one" / "service.json")
    r, events = run(pb, {"name": "echo-one", "probe": probe}, sink, environ={"SERVE_TOKEN": SECRET})
    assert r.status == "succeeded", r.summary()
    endpoint = r.steps["web"].outputs["endpoint"]["value"]
    svc = seen["svc"]
    assert endpoint == {"url": svc.url, "service": "echo-one"}
    assert svc.url.startswith("http://127.0.0.1:")
    info = seen["info"]
    assert info["token_ok"] is True  # the declared secret reached the process
    assert info["home_visible"] is False  # MLOPS_HOME stays closed to the service (its own record too)
    assert SECRET not in seen["record"] and "SERVE_TOKEN" in seen["record"]  # the name, not the value
    # the run ended: the service was stopped, its record removed, no process left
    assert sv.load(home, "echo-one") is None
    assert not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == psutil.STATUS_ZOMBIE
    assert none_left("--service echo-one")
    assert SECRET not in json.dumps([e.data for e in events])
    log = sv.log_path(home, "echo-one").read_text()
    assert "factory sees token" in log and SECRET not in log  # the leaky app's print, masked


def test_kept_service_outlives_the_run_until_stopped(home: Path) -> None:
    pb = playbook(
        """
        app: serveapps:echo
        name: kept-one
        keep: "${{ params.keep }}"
        """,
        params="{keep: {type: boolean, default: false}}",
    )
    r, _ = run(pb, {"keep": True})
    assert r.status == "succeeded", r.summary()
    svc = sv.load(home, "kept-one")
    assert svc is not None and svc.keep and svc.state == "healthy"
    assert httpx.get(svc.url + "/health", timeout=10).status_code == 200
    assert sv.alive(svc)
    stopped = sv.stop(home, "kept-one")
    assert stopped is not None and stopped.name == "kept-one"
    assert none_left("--service kept-one")
    assert sv.load(home, "kept-one") is None


def test_factory_failure_fails_the_step_with_its_reason(home: Path) -> None:
    r, _ = run(playbook("app: serveapps:broken\nname: broken-one\nready_timeout: 30"))
    assert r.status == "failed"
    error = r.steps["web"].error or ""
    assert "no model here" in error and "before it was ready" in error
    assert sv.load(home, "broken-one") is None
    assert none_left("--service broken-one")


def test_health_that_never_answers_times_out_and_stops_it(home: Path) -> None:
    pb = playbook(
        """
        command: [python, -c, "import time; time.sleep(600)"]
        name: mute-one
        ready_timeout: 1
        """
    )
    r, _ = run(pb)
    assert r.status == "failed"
    assert "did not answer 200" in (r.steps["web"].error or "")
    assert none_left("--service mute-one")


def test_a_name_in_use_is_refused(home: Path) -> None:
    pb = playbook("app: serveapps:echo\nname: taken-one\nkeep: true")
    r, _ = run(pb)
    assert r.status == "succeeded", r.summary()
    try:
        r2, _ = run(pb)
        assert r2.status == "failed"
        assert "already runs" in (r2.steps["web"].error or "")
        assert "mlops serve stop taken-one" in (r2.steps["web"].error or "")
    finally:
        sv.stop(home, "taken-one")
    assert none_left("--service taken-one")


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("app: serveapps:echo\nname: Bad_Name", "DNS-1123"),
        ("app: serveapps:echo\ncommand: [x]", "exactly one"),
        ("app: serveapps:echo\nkeep: 'yes please'", "keep"),
        ("command: [serve, '${{ secrets.TOKEN }}']", "command line"),
        ("app: serveapps:echo\nenv: {LD_PRELOAD: /tmp/x.so}", "env name"),
        ("app: serveapps:echo\nname: '${{ params.missing }}'", "names no param"),
        ("app: 'os:system; rm'", "app"),
    ],
)
def test_bad_sections_are_located_errors_at_validate_time(section: str, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        plan_of(playbook(section, extra="secrets: [TOKEN]"))
    assert fragment in str(err.value)
    assert "spec.serve" in str(err.value)


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("http://10.0.0.5:8000/v1", {"url": "http://10.0.0.5:8000/v1"}),
        ({"url": "https://model.example", "service": "m"}, {"url": "https://model.example", "service": "m"}),
        ("ftp://x", None),
        ({"service": "m"}, None),
        ("http://a b", None),
        (42, None),
    ],
)
def test_endpoint_outputs_carry_a_url(returned: Any, expected: Any) -> None:
    code = f"def main():\n    return {{'ep': {returned!r}}}\n"
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: ep, version: 1.0.0}}
spec:
  runtime: python
  python: {json.dumps({"code": code})}
  outputs: {{ep: {{type: endpoint}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: s, uses: playbook/ep}}
"""
    r = Runner(compile_plan("pipeline/t", Index(load_text(spec)))).run()
    if expected is None:
        assert r.status == "failed"
        assert "(endpoint) must be" in (r.steps["s"].error or "")
    else:
        assert r.status == "succeeded", r.summary()
        assert r.steps["s"].outputs["ep"]["value"] == expected


def test_a_step_timeout_stops_a_service_that_never_gets_ready(home: Path) -> None:
    pb = playbook(
        """
        command: [python, -c, "import time; time.sleep(600)"]
        name: slow-one
        ready_timeout: 600
        """,
        extra="timeout: 2s",
    )
    r, _ = run(pb)
    assert r.status == "failed"
    assert "tim" in (r.steps["web"].error or "").lower()
    assert sv.load(home, "slow-one") is None
    assert none_left("--service slow-one")


def test_model_routes_reach_the_service(home: Path) -> None:
    from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route

    save_route(home, ModelRoute(name="chat", model="openai/fake", api_base="http://127.0.0.1:9/v1"))
    seen: dict[str, Any] = {}

    def sink(e: Event) -> None:
        if e.type == "step.finished":
            svc = sv.load(home, "routes-one")
            assert svc is not None
            seen.update(httpx.get(svc.url + "/info", timeout=10).json())

    r, _ = run(playbook("app: serveapps:echo\nname: routes-one"), watch=sink)
    assert r.status == "succeeded", r.summary()
    assert seen["routes"] is True


def test_a_service_whose_runner_died_is_stopped_by_the_next_check(home: Path) -> None:
    import subprocess

    from mlops_nocode.runtime.supervise import check

    r, _ = run(playbook("app: serveapps:echo\nname: orphan-one\nkeep: true"))
    assert r.status == "succeeded", r.summary()
    gone = subprocess.Popen(["true"])
    gone.wait()
    with sv.locked(home):  # as if a Runner that did not keep it had been killed before its end
        svc = sv.load(home, "orphan-one")
        assert svc is not None
        svc.keep, svc.owner_pid = False, gone.pid
        sv.save(home, svc)
    assert [s.name for s in check(home)] == []
    assert sv.load(home, "orphan-one") is None
    assert none_left("--service orphan-one")


def test_unnamed_services_of_one_run_get_their_own_names(home: Path) -> None:
    pb = playbook(
        'app: serveapps:echo\nname: "${{ params.name }}"', params='{name: {type: string, default: ""}}'
    )
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: one, uses: playbook/svc}
    - {id: two, uses: playbook/svc}
"""
    r = Runner(compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))).run()
    assert r.status == "succeeded", {k: v.error for k, v in r.steps.items()}
    names = {s: r.steps[s].outputs["endpoint"]["value"]["service"] for s in ("one", "two")}
    suffix = r.run_id[-6:]
    assert names == {"one": f"one-{suffix}", "two": f"two-{suffix}"}
    assert none_left(f"--service one-{suffix}") and none_left(f"--service two-{suffix}")


def test_what_a_dead_service_left_is_killed_and_nothing_else(home: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    hide = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # left-behind']); "
        "time.sleep(600)"
    )
    section = f"command: [python, -c, {json.dumps(hide)}]\nname: leaver\nready_timeout: 1"
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)  # stranger"], start_new_session=True
    )
    try:
        r, _ = run(playbook(section))  # never healthy: the step fails and stops it
        assert r.status == "failed"
        assert none_left("left-behind")
        # a record whose pid is now someone else's: stop must leave that process alone
        svc = sv.Service(name="leaver", run="r", step="s", port=1, health="/", keep=True, pid=stranger.pid)
        with sv.locked(home):
            sv.save(home, svc)
        assert sv.stop(home, "leaver", grace=0.1) is not None
        assert stranger.poll() is None
    finally:
        os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait()


def test_a_secret_of_several_lines_is_masked_in_the_services_log(home: Path) -> None:
    secret = "first-half-of-key-1\nsecond-half-of-key-2"
    pb = playbook(
        'app: serveapps:echo\nname: pem-one\nenv: {SERVE_TOKEN: "${{ secrets.SERVE_TOKEN }}"}',
        extra="secrets: [SERVE_TOKEN]",
    )
    r, _ = run(pb, environ={"SERVE_TOKEN": secret})
    assert r.status == "succeeded", r.summary()
    log = sv.log_path(home, "pem-one").read_text()
    assert "factory sees token" in log
    assert "first-half-of-key-1" not in log and "second-half-of-key-2" not in log
    assert none_left("--service pem-one")
