"""Secrets through the live gateway: set by the API, encrypted at rest, given to the steps that use them,
and never shown in a response, an event or a log."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import httpx
from sqlalchemy import text

from mlops_nocode.runs.db import Database
from tests.api.conftest import Server, wait_status

VALUE = "s3cr3t-Value-9f2c1a7e"


def _docs(name: str, secret: str) -> list[dict[str, Any]]:
    """A command step that prints the secret (redacted in logs) and writes its SHA-256 as its output."""
    code = (
        "import sys, json, hashlib; print('token is', sys.argv[1]); "
        "open(sys.argv[2], 'w').write(json.dumps(hashlib.sha256(sys.argv[1].encode()).hexdigest()))"
    )
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-use", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {
                "argv": [sys.executable, "-c", code, "${{ params.token }}", "${{ outputs.out }}"],
                "outputs": {"out": "out.json"},
            },
            "outputs": {"out": {"type": "json"}},
            "parameters": {"type": "object", "properties": {"token": {"type": "string"}}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "steps": [
                {
                    "id": "use",
                    "uses": f"playbook/{name}-use",
                    "with": {"token": f"${{{{ secrets.{secret} }}}}"},
                }
            ],
            "outputs": {"digest": "use.out"},
        },
    }
    return [playbook, pipeline]


def _ciphertexts(server: Server) -> list[str]:
    db = Database(server.env.get("DATABASE_URL") or f"sqlite:///{server.home / 'mlops.db'}")
    try:
        with db.engine.connect() as conn:
            return [str(v) for v in conn.execute(text("SELECT ciphertext FROM secrets")).scalars()]
    finally:
        db.close()


def test_secret_set_by_api_reaches_the_step_and_never_comes_back(server: Server, admin: httpx.Client) -> None:
    r = admin.put("/api/v1/secrets/API_TOKEN", json={"value": VALUE})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"name", "created_at", "updated_at"}
    assert admin.put("/api/v1/secrets/API_TOKEN", json={"value": VALUE}).status_code == 200
    listed = admin.get("/api/v1/secrets")
    assert [s["name"] for s in listed.json()] == ["API_TOKEN"] and VALUE not in listed.text

    stored = _ciphertexts(server)
    assert len(stored) == 1 and VALUE not in stored[0] and stored[0].startswith("gAAAA")  # Fernet token

    run_id = admin.post("/pipelines/deploy", json={"pipeline": _docs("uses-secret", "API_TOKEN")}).json()[
        "pipeline_id"
    ]
    assert wait_status(admin, run_id) == "succeeded"
    run = admin.get(f"/api/v1/runs/{run_id}")
    assert run.json()["outputs"]["digest"] == hashlib.sha256(VALUE.encode()).hexdigest()
    events = admin.get(f"/api/v1/runs/{run_id}/events")
    logs = [e["data"] for e in events.json() if e["type"] == "log"]
    assert any("token is ***" in json.dumps(d) for d in logs), logs
    with admin.stream("GET", f"/api/v1/runs/{run_id}/logs") as sse:
        streamed = "".join(sse.iter_text())
    status = admin.get(f"/pipelines/{run_id}/status")
    for body in (run.text, events.text, streamed, status.text, admin.get("/api/v1/runs").text):
        assert VALUE not in body
    files = [path for path in (server.home / "runs" / run_id).rglob("*") if path.is_file()]
    assert any(path.suffix == ".log" for path in files), files  # the step's log is among what is checked
    for path in files:
        assert VALUE.encode() not in path.read_bytes(), path
    assert VALUE not in server.log.read_text()


def test_missing_or_deleted_secret_fails_the_run_clearly(server: Server, admin: httpx.Client) -> None:
    assert admin.put("/api/v1/secrets/GONE", json={"value": "to-be-deleted"}).status_code == 201
    assert admin.delete("/api/v1/secrets/GONE").status_code == 204
    assert admin.delete("/api/v1/secrets/GONE").status_code == 404
    run_id = admin.post("/api/v1/runs", json={"pipeline": _docs("no-secret", "GONE")}).json()["id"]
    assert wait_status(admin, run_id) == "failed"
    assert "secret 'GONE' is not set" in admin.get(f"/pipelines/{run_id}/status").json()["details"]


def test_secret_names_values_and_scopes(server: Server, admin: httpx.Client) -> None:
    assert admin.put("/api/v1/secrets/1bad", json={"value": "x"}).status_code == 422
    assert admin.put("/api/v1/secrets/OK", json={"value": ""}).status_code == 422
    assert admin.put("/api/v1/secrets/OK", json={"value": "v", "extra": 1}).status_code == 422
    reader = admin.post("/api/v1/keys", json={"name": "secrets-reader", "scopes": ["read"]}).json()["key"]
    with server.client(reader) as c:
        assert c.get("/api/v1/secrets").status_code == 200
        assert c.put("/api/v1/secrets/OK", json={"value": "value"}).status_code == 403
        assert c.delete("/api/v1/secrets/OK").status_code == 403
