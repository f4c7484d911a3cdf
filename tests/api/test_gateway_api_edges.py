"""Edges of the live gateway's API found by review: bad diff versions, LIKE wildcards in the run filter,
an empty scope list, who a catalogue commit names, and the blueprint's `"target": "local"` shorthand."""

from __future__ import annotations

import subprocess

import httpx

from tests.api.conftest import Server, sleeper, wait_status


def test_diff_with_a_bad_version_is_a_located_422_like_show(admin: httpx.Client) -> None:
    base = "/api/v1/catalogue/playbook/sklearn-train"
    assert admin.get(base, params={"version": "^bad"}).status_code == 422
    for params, where in [
        ({"from": "^bad", "to": "1.0.0"}, "from"),
        ({"from": "1.0.0", "to": "~x.y"}, "to"),
        ({"from": "not a version", "to": "1.0.0"}, "from"),
    ]:
        r = admin.get(f"{base}/diff", params=params)
        assert r.status_code == 422, (params, r.status_code, r.text)
        [problem] = r.json()["problems"]
        assert problem["where"] == f"query.{where}" and "version" in problem["what"], problem
    missing = admin.get(f"{base}/diff", params={"from": "1.0.0", "to": "9.9.9"})
    assert missing.status_code == 422 and missing.json()["problems"], missing.text
    assert admin.get(f"{base}/diff", params={"from": "1.0.0", "to": "1.0.0"}).status_code == 200


def test_the_pipeline_filter_matches_a_literal_prefix_not_like_wildcards(admin: httpx.Client) -> None:
    created = admin.post("/api/v1/runs", json={"pipeline": sleeper("wild-card", [("a", 0.01)])})
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    assert wait_status(admin, run_id) == "succeeded"

    def total(prefix: str) -> int:
        r = admin.get("/api/v1/runs", params={"pipeline": prefix})
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    assert total("pipeline/wild-card") == 1
    assert total("pipeline/wild-") == 1  # still a prefix match
    for pattern in ["%", "_", "pipeline/wild_card", "pipeline/%card", "%wild-card", "pipeline/wild-card%"]:
        assert total(pattern) == 0, pattern  # `%` and `_` are plain characters
    assert total("pipeline\\wild-card") == 0  # and so is the escape character


def test_an_empty_scope_list_is_refused_not_every_scope(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/auth/token", json={"scopes": []})
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "scopes"] and "at least 1" in error["msg"], error
    assert admin.post("/api/v1/auth/token", json={}).json()["scopes"] == ["admin", "read", "write"]


def _git(server: Server, *args: str) -> str:
    repo = server.home / "catalogues" / "local"
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_a_catalogue_commit_names_the_key_that_made_it(server: Server, admin: httpx.Client) -> None:
    bot = admin.post("/api/v1/keys", json={"name": "ci-bot", "scopes": ["write"]}).json()
    pb = sleeper("authored", [("a", 0.01)])[0]
    with server.client(bot["key"]) as c:
        saved = c.post("/api/v1/catalogue", json={"spec": pb, "author": "Ada Admin <ada@example.org>"})
        assert saved.status_code == 201, saved.text
        history = c.get("/api/v1/catalogue/playbook/authored-sleep/history").json()
    author = history[0]["author"]
    assert "ci-bot" in author and bot["id"] in author, author
    assert "ada@example.org" not in author and "Ada Admin" not in author  # cannot impersonate
    commit = history[0]["commit"]
    body = _git(server, "log", "-1", "--format=%an <%ae>%n%cn <%ce>%n%B", commit)
    assert f"API-Key: {bot['id']} (ci-bot)" in body, body
    assert "Stated-Author: Ada Admin <ada@example.org>" in body, body  # kept, and labelled as a claim
    # a delete is recorded the same way
    with server.client(bot["key"]) as c:
        assert c.delete("/api/v1/catalogue/playbook/authored-sleep").status_code == 200
    deleted = _git(server, "log", "-1", "--format=%an <%ae>%n%B", "HEAD")
    assert bot["id"] in deleted and "API-Key:" in deleted, deleted


def test_target_may_be_a_provider_name(admin: httpx.Client) -> None:
    for path in ("/pipelines/deploy", "/api/v1/runs"):
        r = admin.post(path, json={"pipeline": sleeper("str-target", [("a", 0.01)]), "target": "local"})
        assert r.status_code == 202, (path, r.text)
    run = admin.get("/api/v1/runs", params={"pipeline": "pipeline/str-target"}).json()["items"][0]
    assert run["target"] == {"provider": "local", "options": {}}
    bad = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "target": ""})
    assert bad.status_code == 422, bad.text
    unknown = admin.post("/pipelines/deploy", json={"pipeline": "pipeline/iris-classifier", "target": "moon"})
    assert unknown.status_code == 422 and "moon" in unknown.text, unknown.text
