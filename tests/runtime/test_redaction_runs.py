"""Redaction through real runs: Python and command steps that show a generated secret value every way a
careless step would; no representation of it survives in the events, the run's files, the summary, the
outputs or the values stored in the artifact store."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.redaction_support import (
    NASTY,
    assert_no_secret_in_data,
    assert_no_secret_in_json_lines,
    assert_no_secret_in_text,
    secret_values,
)

CODE = (
    "import json, os, sys; s = os.environ['TOK']; print('raw:', s); print(json.dumps({'t': s})); "
    "print(repr(s)); open(sys.argv[1], 'w').write(json.dumps({'k': [s], s: 1})); "
    "open(sys.argv[2], 'w').write('text ' + s)"
)
SPEC = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: leak, version: 1.0.0}}
spec:
  runtime: python
  python: {{entrypoint: "steps:leak"}}
  outputs: {{y: {{type: json}}, t: {{type: text}}}}
  parameters:
    type: object
    properties: {{secret: {{type: string}}, fail: {{type: boolean, default: false}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: leak-cmd, version: 1.0.0}}
spec:
  runtime: command
  secrets: [TOK]
  command:
    argv: [python3, -c, {json.dumps(CODE)}, "${{{{ outputs.y }}}}", "${{{{ outputs.t }}}}"]
    outputs: {{y: y.json, t: t.txt}}
  outputs: {{y: {{type: json}}, t: {{type: text}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: leaky, version: 1.0.0}}
spec:
  steps:
    - {{id: py, uses: playbook/leak, with: {{secret: "${{{{ secrets.TOK }}}}"}}}}
    - {{id: cmd, uses: playbook/leak-cmd}}
    - {{id: bad, uses: playbook/leak, with: {{secret: "${{{{ secrets.TOK }}}}", fail: true}}}}
  outputs: {{y: py.y, t: py.t, cy: cmd.y, ct: cmd.t}}
"""


def _run(secret: str) -> tuple[RunResult, list[Event]]:
    plan = compile_plan("pipeline/leaky", Index(load_text(textwrap.dedent(SPEC))))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, environ={"TOK": secret}).run()
    return result, events


def _check(secret: str) -> None:
    r, events = _run(secret)
    summary = r.summary()
    assert r.status == "failed", summary
    assert r.steps["py"].status == r.steps["cmd"].status == "succeeded", summary
    assert "failed with" in (r.steps["bad"].error or "")
    assert any(e.type == "log" and e.data["line"].startswith("cut: ") for e in events)
    for e in events:
        assert_no_secret_in_data(e.data, secret, f"event {e.type}")
        assert_no_secret_in_data(json.loads(e.to_json()), secret, f"event {e.type} as sent")
    assert_no_secret_in_data(summary, secret, "summary")
    assert_no_secret_in_data(r.outputs, secret, "outputs")
    assert r.outputs["t"].startswith("text ") and r.outputs["ct"].startswith("text ")
    if len(secret.strip()) >= 4:
        assert r.outputs["t"].startswith("text ***")
    for state in r.steps.values():
        for rec in state.outputs.values():  # what the artifact store keeps (downloadable)
            assert_no_secret_in_text(Path(rec["path"]).read_text(encoding="utf-8"), secret, rec["path"])
    assert_no_secret_in_data(json.loads((r.run_dir / "summary.json").read_text()), secret, "summary.json")
    assert_no_secret_in_json_lines(r.run_dir / "events.jsonl", secret)
    for path in (r.run_dir / "steps").rglob("*"):
        if path.is_file() and path.suffix != ".json":
            assert_no_secret_in_text(path.read_text(encoding="utf-8", errors="replace"), secret, str(path))
        elif path.is_file():
            assert_no_secret_in_data(json.loads(path.read_text(encoding="utf-8")), secret, str(path))


@pytest.mark.parametrize("secret", NASTY, ids=range(len(NASTY)))
def test_nasty_secret_values_never_leave_a_run(secret: str) -> None:
    _check(secret)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=secret_values())
def test_generated_secret_values_never_leave_a_run(secret: str) -> None:
    _check(secret)


def test_secret_no_process_can_take_fails_its_step_clearly() -> None:
    r, events = _run("with a NUL \0 inside")
    assert r.status == "failed"
    errors: dict[str, Any] = {sid: s.error for sid, s in r.steps.items()}
    assert all("holds a NUL character" in (e or "") for e in errors.values()), errors
    assert "NUL" not in "".join(e.data.get("line", "") for e in events)


def test_short_secret_is_run_with_a_warning() -> None:
    r, events = _run("abc")
    assert r.steps["py"].status == "succeeded"
    warnings = [e.data["line"] for e in events if e.type == "log" and "warning: secret" in e.data["line"]]
    assert warnings and "fewer than 4 characters" in warnings[0]


@pytest.mark.timeout(120)
def test_step_linking_its_log_and_metrics_to_dev_zero_does_not_hang_the_runner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the sandbox (a confined step cannot replace its log), the Runner still never reads it."""
    monkeypatch.setenv("STEP_SANDBOX", "none")
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: zero, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:link_to_zero"}
  secrets: [TOK]
  outputs: {y: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: z, version: 1.0.0}
spec:
  steps: [{id: z, uses: playbook/zero, with: {}}]
"""
    plan = compile_plan("pipeline/z", Index(load_text(spec)))
    result = Runner(plan, environ={"TOK": "a-secret-value"}).run()
    assert result.status == "succeeded", result.summary()
    log = result.run_dir / "steps" / "z@1.log"
    assert log.is_symlink() or not log.exists()  # removed or left alone, never read nor rewritten
