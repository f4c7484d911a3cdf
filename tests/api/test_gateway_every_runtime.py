"""The example that chains every runtime, run by the real gateway (`mlops up`) from its own catalogue:
Terraform, Ansible, Python and HTTP steps in one run (see tests/cli/test_every_runtime_example.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import Server, wait_status
from tests.cli.test_every_runtime_example import check_chain
from tests.runtime.http_server import Answer, serve
from tests.runtime.http_server import Server as Hooks


@pytest.fixture
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("gw-chain") / "home", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    yield from serve()


def test_the_gateway_runs_the_example_that_chains_every_runtime(gateway: Server, hooks: Hooks) -> None:
    hooks.on("/hook", Answer(204, b"", {}))
    params = {
        "notify_url": f"{hooks.url}/hook",
        "workspace": 'lab "one" ${x}',
        "workers": 3,
        "estimator": "knn",
    }
    with gateway.client(gateway.admin_key) as admin:
        run = admin.post(
            "/api/v1/runs", json={"pipeline": "pipeline/provisioned-training", "parameters": params}
        )
        assert run.status_code in (200, 201, 202), run.text
        run_id = run.json()["id"]
        assert wait_status(admin, run_id, timeout=180) == "succeeded", admin.get(
            f"/api/v1/runs/{run_id}"
        ).text
        detail = admin.get(f"/api/v1/runs/{run_id}").json()
    runtimes = {s["id"] if isinstance(s, dict) else s for s in detail.get("steps", [])}
    assert not runtimes or {"workspace", "configure", "notify"} <= runtimes
    check_chain(gateway.home / "runs" / run_id, detail["outputs"], hooks)
