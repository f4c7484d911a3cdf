"""A real gateway answers every bad spec with 422 and located problems, never a 500; validate's answer
carries warnings; a required parameter is asked for at launch."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server

PLAYBOOK: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Playbook",
    "metadata": {"name": "echo", "version": "1.0.0"},
    "spec": {
        "runtime": "command",
        "command": {
            "argv": ["sh", "-c", "echo ${{ params.msg }} > out.json"],
            "outputs": {"out": "out.json"},
        },
        "outputs": {"out": {"type": "json"}},
        "parameters": {"type": "object", "properties": {"msg": {"type": "string"}}, "required": ["msg"]},
    },
}
PIPELINE: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Pipeline",
    "metadata": {"name": "crashy", "version": "1.0.0"},
    "spec": {
        "parameters": {
            "type": "object",
            "properties": {"msg": {"type": "string"}, "n": {"type": "number"}},
            "required": ["msg"],
        },
        "steps": [{"id": "load", "uses": "playbook/echo", "with": {"msg": "${{ params.msg }}"}}],
        "outputs": {"out": "load.out"},
    },
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    s = Server(tmp_path_factory.mktemp("gw") / "home")
    s.start()
    with s.client(s.admin_key) as c:
        yield c
    s.stop()


def pipeline(**spec: Any) -> dict[str, Any]:
    p = copy.deepcopy(PIPELINE)
    p["spec"].update(spec)
    return p


def deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"a": value}
    return value


def hostile_bodies() -> list[tuple[str, dict[str, Any], str]]:
    """(case, launch body, a fragment of the expected problem) for the class of the `outputs: {d: load}`
    crash: user text the compiler once parsed without checking it."""
    return [
        (
            "output without .OUTPUT",
            {"pipeline": [PLAYBOOK, pipeline(outputs={"d": "load"})]},
            "invalid connection",
        ),
        (
            "target options too deep",
            {"pipeline": [PLAYBOOK, PIPELINE], "parameters": {"msg": "x"}, "target": {"options": deep(60)}},
            "nested more than",
        ),
        (
            "parameter schema with $ref",
            {
                "pipeline": [
                    PLAYBOOK,
                    pipeline(parameters={"type": "object", "properties": {"msg": {"$ref": "#/x"}}}),
                ]
            },
            "$ref is not supported",
        ),
        (
            "step timeout 0s",
            {"pipeline": [PLAYBOOK, pipeline(steps=[{**PIPELINE["spec"]["steps"][0], "timeout": "0s"}])]},
            "not above 0",
        ),
        (
            "unterminated expression",
            {
                "pipeline": [
                    PLAYBOOK,
                    pipeline(steps=[{"id": "load", "uses": "playbook/echo", "with": {"msg": "${{ x"}}]),
                ]
            },
            "unterminated expression",
        ),
        (
            "launch value with an expression",
            {"pipeline": [PLAYBOOK, PIPELINE], "parameters": {"msg": "${{ secrets.ADMIN }}"}},
            "launch values are data",
        ),
    ]


@pytest.mark.parametrize("path", ["/api/v1/validate", "/api/v1/plan", "/pipelines/deploy"])
def test_bad_specs_answer_422_with_located_problems(gateway: httpx.Client, path: str) -> None:
    for case, body, fragment in hostile_bodies():
        r = gateway.post(path, json={"parameters": {"msg": "hi"}, **body})
        assert r.status_code == 422, (case, r.status_code, r.text)
        problems = r.json()["problems"]
        assert any(fragment in p["what"] for p in problems), (case, problems)
        assert all(p["where"] for p in problems), (case, problems)


def test_not_a_number_in_parameters_is_422(gateway: httpx.Client) -> None:
    raw = json.dumps({"pipeline": [PLAYBOOK, PIPELINE], "parameters": {"msg": "x", "n": 1}}).replace(
        '"n": 1', '"n": NaN'
    )
    r = gateway.post("/api/v1/plan", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "not a finite number" in r.text


def test_catalogue_save_refuses_the_crash_class_and_accepts_required_parameters(
    gateway: httpx.Client, tmp_path: Path
) -> None:
    with_default = {"type": "object", "properties": {"msg": {"type": "string", "default": "x"}}}
    r = gateway.post(
        "/api/v1/catalogue",
        json={"spec": [PLAYBOOK, pipeline(parameters=with_default, outputs={"d": "load"})]},
    )
    assert r.status_code == 422 and "invalid connection" in r.text, r.text
    r = gateway.post(
        "/api/v1/catalogue", json={"text": "apiVersion: mlops-nocode/v1\nkind: Pipeline\n" + "x: [" * 40}
    )
    assert r.status_code == 422, r.text
    r = gateway.post("/api/v1/catalogue", json={"spec": [PLAYBOOK, PIPELINE], "message": "required msg"})
    assert r.status_code == 201, r.text


def test_validate_answers_warnings_and_launch_names_the_required_parameter(gateway: httpx.Client) -> None:
    r = gateway.post("/api/v1/validate", json={"pipeline": [PLAYBOOK, PIPELINE]})
    assert r.status_code == 200, r.text
    [w] = r.json()["warnings"]
    assert w["where"] == "playbook/echo@1.0.0 > spec.command.argv[2]" and "shell_quote" in w["fix"]
    r = gateway.post("/api/v1/plan", json={"pipeline": [PLAYBOOK, PIPELINE]})
    assert r.status_code == 422
    [p] = r.json()["problems"]
    assert p["what"] == "parameter 'msg' of pipeline/crashy is required" and p["where"].endswith(
        "parameters.msg"
    )
    r = gateway.post("/api/v1/plan", json={"pipeline": [PLAYBOOK, PIPELINE], "parameters": {"msg": "hi"}})
    assert r.status_code == 200, r.text
