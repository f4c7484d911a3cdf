"""Bad input answers 4xx with the location of the problem, never 500."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server


def test_malformed_json_unknown_fields_wrong_types(admin: httpx.Client) -> None:
    r = admin.post(
        "/pipelines/deploy", content=b'{"pipeline": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"
    r = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "colour": "red"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "colour"]
    r = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "parameters": [1]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "parameters"]
    r = admin.post(
        "/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "target": {"region": 1}}
    )
    assert r.status_code == 422 and ["body", "target", "region"] in [d["loc"] for d in r.json()["detail"]]
    r = admin.post(
        "/pipelines/deploy", json={"pipeline": {"apiVersion": "mlops-nocode/v1", "kind": "Pipeline"}}
    )
    assert r.status_code == 422 and r.json()["problems"]


def test_size_and_depth_limits(server: Server, admin: httpx.Client) -> None:
    big = b'{"pipeline": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    r = admin.post("/pipelines/deploy", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"][0]["loc"] == ["body"]
    deep: object = "x"
    for _ in range(100):
        deep = {"a": deep}
    r = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "parameters": deep})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "parameters"]
    very_deep = b"[" * 200_000 + b"]" * 200_000
    r = admin.post("/api/v1/validate", content=very_deep, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert httpx.get(f"{server.url}/health").status_code == 200
