"""`mlops run` of the built-in http-notify playbook against a real HTTP server on loopback: the message
and the metrics of an earlier step arrive, the token from a secret is sent and never printed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.runtime.http_server import Answer, Server, serve

TOKEN = "tok-9c1e55aa-http-cli"


@pytest.fixture
def hooks() -> Iterator[Server]:
    yield from serve()


def test_mlops_run_notifies_with_metrics_and_a_secret_token(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], hooks: Server, home: Path
) -> None:
    hooks.on("/notify", Answer(200, b"ok", {"Content-Type": "text/plain"}))
    f = write_spec(
        """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: score, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [sh, -c, 'echo "{\\"accuracy\\": 0.93}" > "$1"', sh, "${{ outputs.m }}"]
    outputs: {m: m.json}
  outputs: {m: {type: metrics}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: notify-demo, version: 1.0.0}
spec:
  parameters: {type: object, properties: {hook: {type: string}}}
  steps:
    - {id: score, uses: playbook/score}
    - id: notify
      uses: playbook/http-notify
      with: {url: "${{ params.hook }}", text: "trained", authorization: "Bearer ${{ secrets.HOOK_TOKEN }}"}
      inputs: {metrics: score.m}
  outputs: {answer: notify.answer, status: notify.status}
"""
    )
    r = mlops("run", str(f), "--json", "--set", f"hook={hooks.url}/notify", env={"HOOK_TOKEN": TOKEN})
    assert r.code == 0, r
    assert r.json()["outputs"] == {"answer": "ok", "status": 200}
    seen = hooks.seen[-1]
    assert json.loads(seen.body) == {"text": "trained", "metrics": {"accuracy": 0.93}}
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in r.stdout + r.stderr
    for path in home.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
