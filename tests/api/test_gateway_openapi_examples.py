"""Every operation of the live gateway's OpenAPI schema shows examples: its JSON request body and its
2xx JSON answers (on the media type, or on the schema after resolving `$ref`; arrays by their items)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
        seen += 1
    return schema


def _schema_has_example(schema: dict[str, Any], doc: dict[str, Any]) -> bool:
    s = _resolve(schema, doc)
    if s.get("examples") or "example" in s:
        return True
    if s.get("type") == "array" and isinstance(s.get("items"), dict):
        return _schema_has_example(s["items"], doc)
    return False


def _media_has_example(media: dict[str, Any], doc: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    return _schema_has_example(media.get("schema") or {}, doc)


def missing_examples(doc: dict[str, Any]) -> list[str]:
    """`METHOD path: what` for every JSON request body or 2xx JSON answer without an example."""
    missing = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not _media_has_example(body, doc):
                missing.append(f"{where}: request body")
            for code, answer in op.get("responses", {}).items():
                media = answer.get("content", {}).get("application/json")
                if str(code).startswith("2") and media is not None and not _media_has_example(media, doc):
                    missing.append(f"{where}: {code} answer")
    return missing


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("oa") / "home", WORKERS="0")
    s.start()
    yield s
    s.stop()


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def test_the_walker_reports_what_has_no_example() -> None:
    bare, shown = {"$ref": "#/components/schemas/Bare"}, {"$ref": "#/components/schemas/Shown"}
    doc = {
        "components": {
            "schemas": {"Bare": {"type": "object"}, "Shown": {"type": "object", "examples": [{}]}}
        },
        "paths": {
            "/a": {
                "post": {
                    "requestBody": _json(bare),
                    "responses": {"200": _json({"type": "array", "items": shown}), "422": _json(bare)},
                },
                "get": {"responses": {"201": _json({"type": "object"})}},
            },
            "/b": {"put": {"requestBody": _json(shown), "responses": {"204": {"description": "gone"}}}},
        },
    }
    assert missing_examples(doc) == ["POST /a: request body", "GET /a: 201 answer"]


def test_every_operation_of_the_live_schema_has_examples(live: Server) -> None:
    doc = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    operations = [(p, m) for p, ops in doc["paths"].items() for m in ops if m in METHODS]
    assert len(operations) >= 25
    assert missing_examples(doc) == []
    # the examples are the realistic ones, not placeholders
    launch = _resolve({"$ref": "#/components/schemas/LaunchRequest"}, doc)
    assert launch["examples"][0]["pipeline"] == "pipeline/iris-classifier"
    run = _resolve({"$ref": "#/components/schemas/Run"}, doc)
    assert run["examples"][0]["status"] in {"queued", "running", "succeeded", "failed", "cancelled"}
