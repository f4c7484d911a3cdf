"""`mlops windmill push` against a Windmill API stand-in with the documented request/response shapes
(tests/integrations/windmill/fake_windmill.py): create then update in place by path, never twice; secret
values only in request bodies; located errors for a bad token, workspace or URL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integrations.windmill.fake_windmill import FakeWindmill

WM_TOKEN = "wm-token-3c1f9e0b7d"
GW_KEY = "mlk_gateway-key-9f8e7d6c5b4a"


@pytest.fixture
def windmill() -> Iterator[FakeWindmill]:
    fake = FakeWindmill(WM_TOKEN).start()
    yield fake
    fake.stop()


def _env(fake: FakeWindmill, **extra: str) -> dict[str, str]:
    return {
        "WINDMILL_API_URL": fake.url,
        "WINDMILL_API_KEY": WM_TOKEN,
        "MLOPS_URL": "http://127.0.0.1:9",
        "MLOPS_TOKEN": GW_KEY,
        **extra,
    }


def test_push_creates_then_updates_in_place(
    mlops: Callable[..., Any], windmill: FakeWindmill, check_openflow: Callable[[dict[str, Any]], None]
) -> None:
    args = ("windmill", "push", "--workspace", "demo", "--pipeline", "pipeline/sales-forecast", "--json")
    first = mlops(*args, env=_env(windmill))
    assert first.code == 0, first
    actions = {(c["kind"], c["path"]): c["action"] for c in first.json()["changes"]}
    assert set(actions.values()) == {"created"}
    assert ("flow", "f/mlops/ml_pipeline_deployment") in actions and (
        "flow",
        "f/mlops/sales_forecast",
    ) in actions
    assert ("app", "f/mlops/ml_pipeline_builder") in actions and ("script", "f/mlops/wait_step") in actions
    key = windmill.items["variables"]["f/mlops/gateway_key"]
    assert key["value"] == GW_KEY and key["is_secret"] is True
    for flow in windmill.items["flows"].values():
        check_openflow({k: v for k, v in flow.items() if k != "path"})

    second = mlops(*args, env=_env(windmill))
    assert second.code == 0, second
    again = {(c["kind"], c["path"]): c["action"] for c in second.json()["changes"]}
    assert again.keys() == actions.keys()
    assert {a for (kind, _), a in again.items() if kind in ("script", "folder")} == {"unchanged"}
    assert {a for (kind, _), a in again.items() if kind in ("flow", "app", "variable")} == {"updated"}
    assert set(windmill.creates.values()) == {1}  # nothing created twice

    for out in (first, second):
        assert GW_KEY not in out.stdout + out.stderr and WM_TOKEN not in out.stdout + out.stderr


def test_a_changed_script_becomes_a_new_version_of_the_same_path(
    mlops: Callable[..., Any], windmill: FakeWindmill
) -> None:
    assert mlops("windmill", "push", "-w", "demo", env=_env(windmill)).code == 0
    old = windmill.items["scripts"]["f/mlops/deploy"]
    windmill.items["scripts"]["f/mlops/deploy"] = {**old, "content": "# edited in Windmill\n"}
    r = mlops("windmill", "push", "-w", "demo", "--json", env=_env(windmill))
    assert r.code == 0, r
    assert {"kind": "script", "path": "f/mlops/deploy", "action": "updated"} in r.json()["changes"]
    posted = [
        b for m, p, b in windmill.requests if p.endswith("/scripts/create") and b["path"] == "f/mlops/deploy"
    ]
    assert posted[-1]["parent_hash"] == old["hash"] and "parent_hash" not in posted[0]


def test_an_answer_echoing_the_key_is_redacted(mlops: Callable[..., Any], windmill: FakeWindmill) -> None:
    windmill.refuse = "/variables/create"
    r = mlops("windmill", "push", "-w", "demo", env=_env(windmill))
    assert r.code == 2 and "Windmill answered 400: refused" in r.stderr, r
    assert GW_KEY not in r.stdout + r.stderr and "***" in r.stderr


def test_push_without_credentials_stores_no_variable(
    mlops: Callable[..., Any], windmill: FakeWindmill
) -> None:
    env = _env(windmill)
    del env["MLOPS_TOKEN"]
    r = mlops("windmill", "push", "-w", "demo", "--no-credentials", env=env)
    assert r.code == 0, r
    assert windmill.items["variables"] == {}


@pytest.mark.parametrize(
    ("env", "args", "where"),
    [
        ({"WINDMILL_API_KEY": "wrong"}, (), "f/mlops"),
        ({}, ("-w", "../other"), "--workspace"),
        ({}, ("--gateway-url", "javascript:alert(1)"), "--gateway-url"),
        ({"WINDMILL_API_URL": ""}, (), "WINDMILL_API_URL"),
        ({"WINDMILL_API_URL": "http://127.0.0.1:9"}, (), "WINDMILL_API_URL"),
    ],
)
def test_push_errors_are_located(
    mlops: Callable[..., Any], windmill: FakeWindmill, env: dict[str, str], args: tuple[str, ...], where: str
) -> None:
    r = mlops("windmill", "push", "-w", "demo", *args, "--json", env=_env(windmill, **env))
    assert r.code == 2, r
    assert "Traceback" not in r.stderr and GW_KEY not in r.stdout + r.stderr
    assert json.loads(r.stdout)["problems"][0]["where"] == where


def test_shipped_assets_are_current_and_valid(
    mlops: Callable[..., Any], tmp_path: Path, check_openflow: Callable[[dict[str, Any]], None]
) -> None:
    """The committed flow and app are what `mlops windmill assets` generates; the flow is valid OpenFlow."""
    shipped = Path(__file__).resolve().parents[3] / "orchestrator" / "windmill"
    assert mlops("windmill", "assets", "--out", str(tmp_path)).code == 0
    for name in ("flows/ml_pipeline_deployment.json", "apps/ml_pipeline_builder.json"):
        assert (tmp_path / name).read_text() == (shipped / name).read_text(), (
            f"run `mlops windmill assets`: {name}"
        )
    check_openflow(json.loads((shipped / "flows/ml_pipeline_deployment.json").read_text()))
    app = json.loads((shipped / "apps/ml_pipeline_builder.json").read_text())
    kinds = {cell["data"]["type"] for cell in app["value"]["grid"]}
    assert {"schemaformcomponent", "selectcomponent", "buttoncomponent", "jobidflowstatuscomponent"} <= kinds
    form = next(c for c in app["value"]["grid"] if c["id"] == "params")["data"]["componentInput"]["value"]
    assert set(form["properties"]) == {"estimator", "n_estimators", "seed"}  # iris-classifier's parameters


def test_compose_file_matches_the_compose_specification_and_holds_no_secret() -> None:
    compose = Path(__file__).resolve().parents[3] / "orchestrator" / "windmill" / "docker-compose.yml"
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(compose)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = yaml.safe_load(compose.read_text())
    assert set(doc["services"]) == {"windmill-db", "windmill-server", "windmill-worker"}
    assert doc["services"]["windmill-server"]["ports"] == ["127.0.0.1:${WINDMILL_PORT:-8001}:8000"]
    assert "${WINDMILL_DB_PASSWORD:?" in compose.read_text()
