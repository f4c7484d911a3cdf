"""A run with a container step (podman, for real) through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, wait_status
from tests.runtime.podman_catalogue import PIPELINE, WRITE_TEXT, catalogue_image


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("gw-container")
    env = catalogue_image(folder)
    s = Server(folder / "home", RUN_STALE_AFTER="3", POLL_SECONDS="0.1", **env)
    s.start()
    try:
        with s.client(s.admin_key) as c:
            yield c
    finally:
        s.stop()


def test_container_step_through_the_gateway(gateway: httpx.Client, tmp_path: Path) -> None:
    r = gateway.post("/pipelines/deploy", json={"pipeline": [WRITE_TEXT, PIPELINE]})
    assert r.status_code == 202, r.text
    run_id = r.json()["pipeline_id"]
    assert wait_status(gateway, run_id, 120) == "succeeded", gateway.get(f"/pipelines/{run_id}/status").text
    run = gateway.get(f"/api/v1/runs/{run_id}").json()
    assert run["outputs"]["counts"] == {"lines": 3, "words": 8, "bytes": 37}
    events = gateway.get(f"/api/v1/runs/{run_id}/events").json()
    lines = [e.get("data", e).get("line", "") for e in events if e["type"] == "log"]
    assert any("counted: " in str(line) for line in lines), events
