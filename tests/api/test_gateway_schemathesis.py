"""Schemathesis against a live gateway's own OpenAPI schema (SQLite), with secrets in its vault and a run
that used them: no 5xx, every answer's status code and body conform to the schema, no answer holds a
secret value (raw or JSON-escaped, see st_hooks), and every operation of the schema is exercised.
Bounded: 25 examples per operation, 60 s of generation at most."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status
from tests.api.st_hooks import forms, no_secret_in_answer

CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "no_secret_in_answer,operations_answered"
)
ROOT = Path(__file__).resolve().parents[2]
_R = secrets.token_hex(6)
# every kind of value redaction must know: plain, JSON-special characters, non-ASCII, multi-line (PEM)
SECRETS = {
    "PLAIN_TOKEN": f"hf_plainTokenValue{_R}",
    "QUOTED": f'pa"ss\\wo\trd-{_R}',
    "UNICODE": f"mot-de-passe-é-ü-中文-{_R}",
    "PEM_KEY": (
        f"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq{_R}\nhkiG9w0BAQEFAASC{_R}\n-----END PRIVATE KEY-----"
    ),
}
# the secrets the executed run prints and writes to its output (the others are only stored)
RUN_SECRETS = list(SECRETS)
# Answers exempt from the secret check (none: a step's file holding a secret is withheld, see
# test_an_artifact_file_holding_a_secret_is_withheld).
RAW_FILES: list[str] = []


def _leaky_run(names: list[str]) -> list[dict[str, Any]]:
    """A command step that prints the secrets it is given and writes them to its JSON output (a value,
    masked) and to a file output (its data, kept as written)."""
    code = (
        "import sys, json; print(*sys.argv[3:]); open(sys.argv[1], 'w').write(json.dumps(sys.argv[3:])); "
        "open(sys.argv[2], 'w').write(' '.join(sys.argv[3:]))"
    )
    params = [f"${{{{ params.{n.lower()} }}}}" for n in names]
    argv = ["python3", "-c", code, "${{ outputs.out }}", "${{ outputs.raw }}", *params]
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "st-leak", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {"argv": argv, "outputs": {"out": "out.json", "raw": "raw.txt"}},
            "outputs": {"out": {"type": "json"}, "raw": {"type": "file"}},
            "parameters": {
                "type": "object",
                "properties": {n.lower(): {"type": "string"} for n in names},
            },
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "st-leak-run", "version": "1.0.0"},
        "spec": {
            "steps": [
                {
                    "id": "leak",
                    "uses": "playbook/st-leak",
                    "with": {n.lower(): f"${{{{ secrets.{n} }}}}" for n in names},
                }
            ],
            "outputs": {"out": "leak.out", "raw": "leak.raw"},
        },
    }
    return [playbook, pipeline]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A gateway whose vault holds SECRETS and which has run a pipeline using RUN_SECRETS; restarted
    without workers for the fuzzing (fuzzed runs are queued, never executed)."""
    s = Server(tmp_path_factory.mktemp("st") / "home", WORKERS="1")
    s.start()
    try:
        with s.client(s.admin_key) as admin:
            for name, value in SECRETS.items():
                assert admin.put(f"/api/v1/secrets/{name}", json={"value": value}).status_code == 201
            run_id = admin.post("/api/v1/runs", json={"pipeline": _leaky_run(RUN_SECRETS)}).json()["id"]
            assert wait_status(admin, run_id) == "succeeded"
        s.stop()
        s.env["WORKERS"] = "0"
        s.start()
        yield s, run_id
    finally:
        s.stop()


def _st(server: Server, run_id: str, cwd: Path, checks: str, seen: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    argv = [
        st, "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {server.admin_key}",
        "--checks", checks,
        "--max-examples", "25",
        "--max-time", "60",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "10",
        "--seed", "1",
        "--no-shrink",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.api.st_hooks",
        "MLOPS_ST_SECRETS": json.dumps(list(SECRETS.values())),
        "MLOPS_ST_RUN_ID": run_id,
        "MLOPS_ST_SEEN": str(seen),
        "MLOPS_ST_OWN_KEY_ID": server.admin_key.split("_")[1],
        "MLOPS_ST_RAW_FILES": json.dumps(RAW_FILES),
    }
    done = subprocess.run(argv, capture_output=True, text=True, timeout=200, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]


@pytest.mark.timeout(300)
def test_schema_fuzzing_finds_no_server_error_schema_violation_or_secret(
    live: tuple[Server, str], tmp_path: Path
) -> None:
    server, run_id = live
    with server.client(server.admin_key) as admin:  # the run's answers are what the fuzzing reads
        assert admin.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded"
        operations = {
            f"{method.upper()} {path}"
            for path, ops in admin.get("/openapi.json").json()["paths"].items()
            for method in ops
        }
    seen = tmp_path / "seen.txt"
    _st(server, run_id, tmp_path, CHECKS, seen)
    answered = set(seen.read_text().splitlines())
    assert operations - answered == set(), sorted(operations - answered)  # every route, the new ones too
    assert {"GET /api/v1/session", "POST /api/v1/session", "DELETE /api/v1/keys/{key_id}"} <= answered
    # the last admin key survived whatever the fuzzing revoked
    with server.client(server.admin_key) as admin:
        assert admin.get("/api/v1/keys").status_code == 200


def test_an_artifact_file_holding_a_secret_is_withheld(live: tuple[Server, str]) -> None:
    """Found by the fuzzing's secret check: a file output holds the secrets the step wrote (its data, not
    rewritten), so downloading it is refused with a located problem; a value output is served masked."""
    server, run_id = live
    with server.client(server.admin_key) as admin:
        for name in SECRETS:  # the vault's values change after the run (as the fuzzing does): still withheld
            assert admin.put(f"/api/v1/secrets/{name}", json={"value": f"other-{name}"}).status_code < 300
        listed = {a["name"]: a for a in admin.get(f"/api/v1/runs/{run_id}/artifacts").json()}
        raw = admin.get(f"/api/v1/runs/{run_id}/artifacts/raw")
        value = admin.get(f"/api/v1/runs/{run_id}/artifacts/out")
    assert listed["raw"]["withheld"] is True and listed["out"]["withheld"] is False
    assert raw.status_code == 403, raw.text
    assert raw.json()["problems"][0]["where"] == f"run {run_id} > outputs.raw"
    assert value.status_code == 200, value.text
    for secret in SECRETS.values():
        for answer in (raw.text, value.text):
            assert secret not in answer and json.dumps(secret)[1:-1] not in answer
    assert "***" in value.text


def test_the_secret_check_catches_every_form_of_a_value() -> None:
    """The check's forms: raw, JSON-escaped (ASCII or not), and each line of a multi-line value."""
    quoted = forms(SECRETS["QUOTED"])
    assert 'pa\\"ss\\\\wo\\trd-' in json.dumps(SECRETS["QUOTED"])  # what JSON makes of it
    assert json.dumps(SECRETS["QUOTED"])[1:-1] in quoted and SECRETS["QUOTED"] in quoted
    unicode = forms(SECRETS["UNICODE"])
    assert json.dumps(SECRETS["UNICODE"])[1:-1] in unicode and "\\u00e9" in json.dumps(SECRETS["UNICODE"])
    pem = forms(SECRETS["PEM_KEY"])
    assert f"MIIEvQIBADANBgkq{_R}" in pem and "-----END PRIVATE KEY-----" in pem


def test_the_secret_check_fails_a_leaking_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself, on answers that echo a secret in each form (so a passing run means something)."""
    monkeypatch.setenv("MLOPS_ST_SECRETS", json.dumps(list(SECRETS.values())))
    for value in SECRETS.values():
        for leak in (
            httpx.Response(200, json={"echo": value}),  # JSON-escaped
            httpx.Response(200, text=f"log: {value}"),  # raw
            httpx.Response(200, text=value.splitlines()[-1 if "\n" not in value else 1]),  # one line
        ):
            with pytest.raises(AssertionError, match="secret value"):
                no_secret_in_answer(None, leak, None)
    no_secret_in_answer(None, httpx.Response(200, json={"echo": "nothing", "value": "[REDACTED]"}), None)
