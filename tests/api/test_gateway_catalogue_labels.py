"""The catalogue's label filter (`GET /api/v1/catalogue?label=KEY=VALUE`, repeatable: all must match)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, sleeper


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    s = Server(Path(tmp_path_factory.mktemp("labels")) / "home")
    s.start()
    try:
        with s.client(s.admin_key) as c:
            yield c
    finally:
        s.stop()


def _save(admin: httpx.Client, name: str, labels: dict[str, str]) -> None:
    pb = json.loads(json.dumps(sleeper(name, [("a", 0.01)])[0]))
    pb["metadata"]["labels"] = labels
    r = admin.post("/api/v1/catalogue", json={"spec": pb})
    assert r.status_code == 201, r.text


def test_listing_filters_by_every_label_given(admin: httpx.Client) -> None:
    _save(admin, "lab-a", {"task": "classification", "team": "red"})
    _save(admin, "lab-b", {"task": "classification", "team": "blue"})
    _save(admin, "lab-c", {"task": "regression"})

    def names(*labels: str) -> list[str]:
        r = admin.get("/api/v1/catalogue", params={"kind": "playbook", "label": list(labels)})
        assert r.status_code == 200, r.text
        return sorted(i["name"] for i in r.json() if i["name"].startswith("lab-"))

    assert names() == ["lab-a-sleep", "lab-b-sleep", "lab-c-sleep"]
    assert names("task=classification") == ["lab-a-sleep", "lab-b-sleep"]
    assert names("task=classification", "team=blue") == ["lab-b-sleep"]
    assert names("task=nothing") == []
    assert names(" task = regression ") == ["lab-c-sleep"]


@pytest.mark.parametrize("bad", ["task", "=x", "k=" + "v" * 300])
def test_a_bad_label_filter_is_a_located_422(admin: httpx.Client, bad: str) -> None:
    r = admin.get("/api/v1/catalogue", params={"label": ["ok=1", bad]})
    assert r.status_code == 422, r.text
    [problem] = r.json()["problems"]
    assert problem["where"] == "query.label[1]" and "KEY=VALUE" in problem["fix"], problem


def test_too_many_label_filters_are_refused(admin: httpx.Client) -> None:
    r = admin.get("/api/v1/catalogue", params={"label": [f"k{i}=v" for i in range(21)]})
    assert r.status_code == 422, r.text
