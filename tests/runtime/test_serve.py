"""serve steps through a real Runner: a real service process (uvicorn) answering on loopback, its endpoint
output, the registry, secrets and routes reaching it, confinement, stop at the run's end (no orphan),
`keep`, a factory that fails, a health path that never answers, a name already taken."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
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


def run(pb: str, with_: dict[str, Any] | None = None, **kw: Any) -> tuple[RunResult, list[Event]]:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: web, uses: playbook/svc, with: {json.dumps(with_ or {})}}}
"""
    plan = compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, **kw).run()
    return result, events


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
    events: list[Event] = []

    def both(e: Event) -> None:
        events.append(e)
        sink(e)

    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: web, uses: playbook/svc, with: {name: echo-one, probe: PROBE}}
""".replace("PROBE", probe)
    plan = compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
    r = Runner(plan, sink=both, environ={"SERVE_TOKEN": SECRET}).run()
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
    ],
)
def test_bad_sections_are_located_errors_at_validate_time(section: str, fragment: str) -> None:
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps:
    - {id: web, uses: playbook/svc}
"""
    with pytest.raises(SpecError) as err:
        compile_plan(
            "pipeline/t", Index(load_text(playbook(section, extra="secrets: [TOKEN]")) + load_text(spec))
        )
    assert fragment in str(err.value)
    assert "spec.serve" in str(err.value)
