"""The gateway masks a model route's provider key in what a Runner reports for a run with litellm steps
(a defence behind the Runner's own masking, like the vault's step secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_nocode.api.app import open_gateway
from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from mlops_nocode.runs.service import NewEvent
from mlops_nocode.settings import Settings

KEY = "sk-route-key-that-must-never-show-7f3a"


def _docs() -> list[dict[str, Any]]:
    ask = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "ask", "version": "1.0.0"},
        "spec": {
            "runtime": "litellm",
            "litellm": {"model": "chat", "prompt": "hi", "mode": "completion", "outputs": {"a": "text"}},
            "outputs": {"a": {"type": "text"}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "asking", "version": "1.0.0"},
        "spec": {"steps": [{"id": "ask", "uses": "playbook/ask"}]},
    }
    return [ask, pipeline]


def test_a_route_key_reported_by_a_runner_is_masked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    gw = open_gateway(Settings(mlops_home=home, secret_key="s" * 48, workers=0))
    try:
        save_route(
            home, ModelRoute(name="chat", model="openai/x", kind="completion", api_key_secret="CHAT_KEY")
        )
        gw.secrets.put("CHAT_KEY", KEY)
        run_id = gw.runs.create(_docs())["id"]
        assert gw.runs.claim("w1") is not None
        gw.runs.report(run_id, "w1", 1, [NewEvent("log", "ask", {"line": f"echo {KEY} !"}, 1.0)], None)
        assert gw.runs.finish(run_id, "w1", "failed", f"boom {KEY}", {"o": [KEY]}, None, 1)
        stored = repr(gw.runs.events(run_id)) + repr(gw.runs.get(run_id))
        assert KEY not in stored
        assert gw.runs.events(run_id)[0]["data"]["line"] == "echo *** !"
    finally:
        gw.db.close()
