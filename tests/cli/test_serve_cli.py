"""`mlops serve list|stop` as a real process: a table with health, JSON, stop by name and --all, precise
errors; a service that ignores SIGTERM and hides a process in another session is still stopped whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text
from tests.conftest import CliResult, none_left

STUBBORN = (
    "import os, signal, subprocess, sys, http.server as h; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # hidden-child'], "
    "start_new_session=True); "
    "subprocess.Popen([sys.executable, '-c', 'import os, time; os.fork() or time.sleep(600)  # daemon'], "
    "start_new_session=True); "
    "h.test(HandlerClass=h.SimpleHTTPRequestHandler, port=int(os.environ['MLOPS_SERVE_PORT']), "
    "bind='127.0.0.1')"
)


def start(name: str, section: str) -> None:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: svc, version: 1.0.0}}
spec:
  runtime: serve
  serve:
    name: {name}
    keep: true
{section}
  outputs: {{endpoint: {{type: endpoint}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: web, uses: playbook/svc}}
"""
    r = Runner(compile_plan("pipeline/t", Index(load_text(spec)))).run()
    assert r.status == "succeeded", r.summary()


def test_list_and_stop(home: Path, mlops: Callable[..., CliResult]) -> None:
    start("cli-one", "    app: serveapps:echo")
    start("cli-two", "    app: serveapps:echo")
    r = mlops("serve", "list")
    assert r.code == 0, r
    assert "cli-one" in r.stdout and "cli-two" in r.stdout and "healthy" in r.stdout
    listed = json.loads(mlops("serve", "list", "--json").stdout)
    assert {s["name"]: s["state"] for s in listed} == {"cli-one": "healthy", "cli-two": "healthy"}
    r = mlops("serve", "logs", "cli-one", "-n", "20")
    assert r.code == 0 and "factory sees token" in r.stdout and "Uvicorn running" not in r.stderr, r
    assert mlops("serve", "logs", "../x").code == 2
    r = mlops("serve", "stop", "cli-one")
    assert r.code == 0 and "stopped cli-one" in r.stdout, r
    assert none_left("--service cli-one")
    r = mlops("serve", "stop", "cli-one")
    assert r.code == 1 and "no service 'cli-one'" in r.stderr and "cli-two" in r.stderr, r
    r = mlops("serve", "stop")
    assert r.code == 2 and "NAME or --all" in r.stderr, r
    r = mlops("serve", "stop", "../../etc")
    assert r.code == 2 and "DNS-1123" in r.stderr, r
    r = mlops("serve", "stop", "cli-two", env={"SERVE_STOP_GRACE": "soon"})
    assert r.code == 2 and "SERVE_STOP_GRACE" in r.stderr and "Traceback" not in r.stderr, r
    assert sv.load(home, "cli-two") is not None  # nothing changed
    r = mlops("serve", "stop", "--all")
    assert r.code == 0 and "stopped cli-two" in r.stdout, r
    assert none_left("--service cli-two")
    r = mlops("serve", "list")
    assert r.code == 0 and "no services" in r.stdout


def test_a_stubborn_service_is_killed_after_the_grace_period(
    home: Path, mlops: Callable[..., CliResult]
) -> None:
    section = f"    command: [python, -c, {json.dumps(STUBBORN)}]\n    health: /"
    start("stubborn", section)
    svc = sv.load(home, "stubborn")
    assert svc is not None and sv.alive(svc)
    r = mlops("serve", "stop", "stubborn", env={"SERVE_STOP_GRACE": "0.5"})
    assert r.code == 0, r
    assert none_left("--service stubborn")
    assert none_left("hidden-child")
    assert none_left("# daemon")  # double-forked: its parent exited, it left the service's tree


def test_k8s_prints_the_serve_steps_objects(mlops: Callable[..., CliResult], tmp_path: Path) -> None:
    import yaml

    root = Path(__file__).resolve().parents[2] / "catalogue"
    spec = tmp_path / "p.yaml"
    spec.write_text(
        """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: p, version: 1.0.0}
spec:
  parameters: {type: object, properties: {model: {type: string, default: llama3.2}}}
  steps:
    - {id: llm, uses: playbook/serve-llm, with: {model: "${{ params.model }}", engine: ollama}}
"""
    )
    r = mlops("serve", "k8s", str(spec), "-c", str(root), "--set", "model=qwen2.5:0.5b", "--namespace", "ml")
    assert r.code == 0, r
    kinds = [d["kind"] for d in yaml.safe_load_all(r.stdout) if d]
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    assert "qwen2.5:0.5b" in r.stdout
    bad = mlops("serve", "k8s", str(spec), "-c", str(root), "--set", "model=--trust-remote-code")
    assert bad.code == 2 and "model" in bad.stderr, bad


def test_the_gateway_refuses_a_bad_serve_setting(mlops: Callable[..., CliResult]) -> None:
    r = mlops("up", "--port", "0", env={"SERVE_CHECK_INTERVAL": "never"})
    assert r.code == 2 and "SERVE_CHECK_INTERVAL" in r.stderr and "Traceback" not in r.stderr, r
