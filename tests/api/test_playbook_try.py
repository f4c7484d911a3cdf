"""POST /api/v1/playbooks/try through a live gateway: a draft playbook carrying its code runs as a
one-step run on sample inputs; hostile drafts and samples are refused with located problems, nothing
saved or run; a saved inline-code playbook runs inside a pipeline."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status

CODE = """import json


def main(ctx, text, table, factor=2):
    with open(text) as f:
        words = json.load(f).split()
    with open(table) as f:
        rows = f.read().splitlines()
    ctx.log.info("got %d words and %d rows", len(words), len(rows))
    ctx.metric("words", len(words))
    out = ctx.output_dir / "report.txt"
    out.write_text(f"{len(words) * factor} {rows[0]}")
    return {"count": len(words) * factor, "report": str(out)}
"""


def draft(name: str = "count-words", code: str = CODE, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": name, "version": "0.1.0", "description": "counts words"},
        "spec": {
            "runtime": "python",
            "python": {"code": code, "entrypoint": "main"},
            "inputs": {"text": {"type": "text"}, "table": {"type": "dataset"}},
            "outputs": {"count": {"type": "json"}, "report": {"type": "file"}},
            "parameters": {"type": "object", "properties": {"factor": {"type": "integer", "default": 2}}},
            **spec,
        },
    }


SAMPLES = {"text": {"value": "one two three"}, "table": {"filename": "data.csv", "text": "a,b\n1,2\n"}}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("try") / "home", TRY_SAMPLE_MAX_BYTES="4096")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(gateway: Server) -> Iterator[httpx.Client]:
    with gateway.client(gateway.admin_key) as c:
        yield c


def test_a_draft_runs_on_samples_with_logs_metrics_and_outputs(admin: httpx.Client) -> None:
    r = admin.post(
        "/api/v1/playbooks/try", json={"playbook": draft(), "parameters": {"factor": 3}, "inputs": SAMPLES}
    )
    assert r.status_code == 202, r.text
    run = r.json()
    assert wait_status(admin, run["id"]) == "succeeded", admin.get(f"/api/v1/runs/{run['id']}").text
    events = admin.get(f"/api/v1/runs/{run['id']}/events").json()
    assert any(e["type"] == "log" and "got 3 words and 2 rows" in e["data"]["line"] for e in events)
    assert any(e["type"] == "metric" and e["step"] == "step" and e["data"]["value"] == 3 for e in events)
    assert admin.get(f"/api/v1/runs/{run['id']}").json()["outputs"]["count"] == 9
    assert admin.get(f"/api/v1/runs/{run['id']}/artifacts/report").content == b"9 a,b"
    uploaded = {"filename": "up.bin", "base64": base64.b64encode(b"x,y\n").decode()}
    r = admin.post(
        "/api/v1/playbooks/try", json={"playbook": draft(), "inputs": {**SAMPLES, "table": uploaded}}
    )
    assert wait_status(admin, r.json()["id"]) == "succeeded"
    assert admin.get(f"/api/v1/runs/{r.json()['id']}/artifacts/report").content == b"6 x,y"
    listing = admin.get("/api/v1/catalogue", params={"search": "count-words"}).json()
    assert not [e for e in listing if e["name"] == "count-words"], "a test run saves nothing"


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ({"inputs": {**SAMPLES, "table": {"filename": "../../etc/passwd", "text": "x"}}},
         "body.inputs.table.filename", "not a plain file name"),
        ({"inputs": {**SAMPLES, "table": {"filename": "a/b.csv", "text": "x"}}},
         "body.inputs.table.filename", "not a plain file name"),
        ({"inputs": {**SAMPLES, "table": {"filename": "..", "text": "x"}}}, "body.inputs.table.filename", ""),
        ({"inputs": {**SAMPLES, "table": {"filename": "a.csv", "base64": "%%%"}}},
         "body.inputs.table.base64", ""),
        ({"inputs": {**SAMPLES, "table": {"filename": "a.csv", "text": "x" * 5000}}}, "body.inputs",
         "more than TRY_SAMPLE_MAX_BYTES (4096)"),
        ({"inputs": {"text": SAMPLES["text"]}}, "body.inputs.table", "needs a sample"),
        ({"inputs": {**SAMPLES, "text": {"value": {"a": ["${{ secrets.TOKEN }}"]}}}},
         "body.inputs.text.value", "holds '${{'"),
        ({"inputs": {**SAMPLES, "nope": {"value": 1}}}, "body.inputs.nope", "has no input 'nope'"),
        ({"inputs": {**SAMPLES, "text": {"filename": "x"}}}, "body.inputs.text", "takes a value"),
        ({"playbook": draft(code="def main(ctx, text, table, factor):\n    return {(}\n")},
         "playbook/count-words@0.1.0 > spec.python.code:2:14", "syntax error at line 2"),
        ({"playbook": draft(code="x" * (300 * 1024))}, "body.playbook (Playbook count-words) > spec.python",
         "MAX_PLAYBOOK_CODE_BYTES"),
        ({"playbook": draft(name='<img src=x onerror="alert(1)">')}, "body.playbook", "name"),
        ({"playbook": draft(name="editor-samples")}, "body.playbook.metadata.name", "reserved"),
        ({"parameters": {"factor": "many"}}, "factor", "integer"),
    ],
)  # fmt: skip
def test_hostile_drafts_and_samples_are_located_and_run_nothing(
    admin: httpx.Client, body: dict[str, Any], where: str, what: str
) -> None:
    before = admin.get("/api/v1/runs").json()["total"]
    r = admin.post("/api/v1/playbooks/try", json={"playbook": draft(), "inputs": SAMPLES, **body})
    assert r.status_code == 422, r.text
    problems = r.json()["problems"]
    assert any(where in p["where"] and what in p["what"] for p in problems), problems
    assert "Traceback" not in r.text and "x" * 1000 not in r.text
    assert admin.get("/api/v1/runs").json()["total"] == before


def test_a_saved_inline_playbook_runs_inside_a_pipeline(admin: httpx.Client, gateway: Server) -> None:
    saved = admin.post("/api/v1/catalogue", json={"spec": draft("word-report"), "message": "first version"})
    assert saved.status_code == 201, saved.text
    shown = admin.get("/api/v1/catalogue/playbook/word-report").json()
    assert "code: " in shown["text"] and "ctx.metric" in shown["text"]
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "uses-word-report", "version": "1.0.0"},
        "spec": {
            "steps": [
                {"id": "say", "uses": "playbook/sayer"},
                {
                    "id": "count",
                    "uses": "playbook/word-report@0.1.0",
                    "inputs": {"text": "say.text", "table": "say.table"},
                },
            ],
            "outputs": {"count": "count.count"},
        },
    }
    sayer_code = "def main(ctx):\n    p = ctx.output_dir / 't.csv'\n    p.write_text('h\\n1')\n"
    sayer = draft("sayer", code=sayer_code + "    return {'text': 'a b', 'table': str(p)}\n")
    sayer["spec"].update(
        inputs={}, outputs={"text": {"type": "text"}, "table": {"type": "dataset"}}, parameters={}
    )
    r = admin.post("/api/v1/runs", json={"pipeline": [sayer, pipeline]})
    assert r.status_code == 202, r.text
    assert wait_status(admin, r.json()["id"]) == "succeeded"
    assert admin.get(f"/api/v1/runs/{r.json()['id']}").json()["outputs"] == {"count": 4}
    assert not list(Path(gateway.home).rglob("playbook_code.py")), (
        "the code file lives only while its step runs"
    )


def test_a_sample_can_be_an_output_of_an_earlier_run(admin: httpx.Client) -> None:
    """Taken from the gateway's artifact store by run and output name, never by a path from the caller."""
    first = admin.post("/api/v1/playbooks/try", json={"playbook": draft(), "inputs": SAMPLES}).json()["id"]
    assert wait_status(admin, first) == "succeeded"
    from_run = {**SAMPLES, "table": {"run": first, "output": "report"}}
    r = admin.post("/api/v1/playbooks/try", json={"playbook": draft(), "inputs": from_run})
    assert r.status_code == 202, r.text
    assert wait_status(admin, r.json()["id"]) == "succeeded"
    assert admin.get(f"/api/v1/runs/{r.json()['id']}/artifacts/report").content == b"6 6 a,b"
    echo = draft(
        "echo", code="import json\n\ndef main(ctx, value):\n    return {'same': json.load(open(value))}\n"
    )
    echo["spec"].update(inputs={"value": {"type": "json"}}, outputs={"same": {"type": "json"}}, parameters={})
    r = admin.post(
        "/api/v1/playbooks/try",
        json={"playbook": echo, "inputs": {"value": {"run": first, "output": "count"}}},
    )
    assert wait_status(admin, r.json()["id"]) == "succeeded"
    assert admin.get(f"/api/v1/runs/{r.json()['id']}").json()["outputs"] == {"same": 6}
    for sample, where, what in [
        ({"run": "../../etc", "output": "report"}, "body.inputs.table.run", "no run"),
        ({"run": first, "output": "../../../etc/passwd"}, "body.inputs.table.output", "has no output"),
    ]:
        r = admin.post(
            "/api/v1/playbooks/try", json={"playbook": draft(), "inputs": {**SAMPLES, "table": sample}}
        )
        assert r.status_code == 422, r.text
        assert any(p["where"] == where and what in p["what"] for p in r.json()["problems"]), r.text
