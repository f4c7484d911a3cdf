"""The platform's LiteLLM proxy for real: `mlops llm up` starts a `litellm` process on loopback, routed to
the scripted OpenAI-compatible backend (tests/fakellm.py, standing in for a model); the platform client
calls through it, keys issued by `mlops llm keys` are checked by the proxy itself, spend is recorded, and
`mlops llm down` leaves no process. One proxy per module (a start takes ~8-20 s)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlops_nocode.integrations.litellm.access import proxy_access
from mlops_nocode.integrations.litellm.client import ModelCallError, chat
from mlops_nocode.integrations.litellm.vkeys import VirtualKeys, keys_path
from tests.api.conftest import Server
from tests.conftest import none_left, processes_with
from tests.fakellm import FakeLLM, free_port

PROVIDER_KEY = "sk-provider-Zq8Xv2Lm9Rt4Wn7Kp1Jd"  # what the "paid" backend demands: a secret


@dataclass
class Proxy:
    home: Path
    url: str
    free: FakeLLM
    paid: FakeLLM
    env: dict[str, str]


def mlops(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    full = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
    full.update({"MLOPS_HOME": str(home), "COLUMNS": "200", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", *args],
        capture_output=True, text=True, env=full, timeout=timeout,
    )  # fmt: skip


def ok(proc: Any) -> Any:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    home = tmp_path_factory.mktemp("llm-home")
    free, paid = FakeLLM(), FakeLLM(api_key=PROVIDER_KEY)
    env = {"PAID_KEY": PROVIDER_KEY, "LLM_PROXY_RETRIES": "0"}
    try:
        ok(mlops(home, "llm", "routes", "add", "--name", "chat", "--model", "openai/fake", "--api-base",
                 free.url, "--price-in", "0.001", "--price-out", "0.002"))  # fmt: skip
        ok(mlops(home, "llm", "routes", "add", "--name", "paid", "--model", "openai/fake", "--api-base",
                 paid.url, "--key-secret", "PAID_KEY"))  # fmt: skip
        ok(mlops(home, "llm", "routes", "add", "--name", "embed", "--model", "openai/fake-embed", "--kind",
                 "embedding", "--api-base", free.url))  # fmt: skip
        ok(mlops(home, "llm", "up", "--port", str(free_port()), env=env))
        state = json.loads((home / "llm" / "proxy.json").read_text())
        yield Proxy(home, state["url"], free, paid, env)
    finally:
        mlops(home, "llm", "down")
        free.stop()
        paid.stop()


def _post(p: Proxy, key: str | None, model: str = "chat", text: str = "hi") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{p.url}/v1/chat/completions", json=body, headers=headers, timeout=60)


def _recorded(p: Proxy, key_id: str, requests: int, timeout: float = 30.0) -> None:
    """Wait until the proxy's spend callback (it runs after the answer is sent) recorded `requests`."""
    keys = VirtualKeys(keys_path(p.home))
    deadline = time.monotonic() + timeout
    while (info := keys.get(key_id)) is None or info.requests < requests:
        assert time.monotonic() < deadline, f"key {key_id}: {info}"
        time.sleep(0.05)


def test_the_platform_client_chats_through_the_proxy(proxy: Proxy) -> None:
    via = proxy_access(proxy.home, {})
    assert via is not None and via.url == proxy.url
    answer = chat(proxy.home, "chat", [{"role": "user", "content": "hello there"}], secrets={}, via=via)
    assert answer.text == "echo: hello there"
    assert answer.usage.prompt_tokens > 0
    # the key the route names reached the backend through the proxy's environment only
    paid = chat(proxy.home, "paid", [{"role": "user", "content": "pay me"}], secrets={}, via=via)
    assert paid.text == "echo: pay me"


def test_backend_errors_are_surfaced_with_their_status(proxy: Proxy) -> None:
    via = proxy_access(proxy.home, {})
    for status in (429, 500):
        proxy.free.script(chat=[{"status": status, "error": "backend says no"}] * 3)
        with pytest.raises(ModelCallError) as caught:
            chat(proxy.home, "chat", [{"role": "user", "content": "x"}], secrets={}, via=via, retries=0)
        assert caught.value.status == status
        assert caught.value.retryable
        proxy.free.reset()


def test_a_wrong_or_absent_key_is_refused(proxy: Proxy) -> None:
    assert _post(proxy, None).status_code == 401
    assert _post(proxy, "sk-mlops-not-a-key").status_code == 401
    basic = httpx.get(f"{proxy.url}/v1/models", headers={"Authorization": "Basic eDp5"}, timeout=30)
    assert basic.status_code == 401
    master = (proxy.home / "llm" / "master_key").read_text().strip()
    assert _post(proxy, master).status_code == 200


def test_issued_keys_work_until_revoked_or_over_budget_and_spend_is_recorded(proxy: Proxy) -> None:
    made = ok(mlops(proxy.home, "llm", "keys", "create", "app", "--budget", "0.01", "--json")).stdout
    key = json.loads(made)
    assert _post(proxy, key["key"], text="one two three").status_code == 200
    _recorded(proxy, key["id"], 1)
    listed = {k["id"]: k for k in json.loads(ok(mlops(proxy.home, "llm", "keys", "list", "--json")).stdout)}
    mine = listed[key["id"]]
    assert "key" not in mine and key["key"] not in json.dumps(listed)
    assert mine["requests"] == 1 and mine["prompt_tokens"] > 0 and mine["completion_tokens"] > 0
    assert mine["spend_usd"] == pytest.approx(
        0.001 * mine["prompt_tokens"] + 0.002 * mine["completion_tokens"]
    )
    # a budget below what one call costs: the next call is refused, by the proxy
    small = json.loads(
        ok(mlops(proxy.home, "llm", "keys", "create", "tiny", "--budget", "0.0001", "--json")).stdout
    )
    assert _post(proxy, small["key"]).status_code == 200
    _recorded(proxy, small["id"], 1)
    over = _post(proxy, small["key"])
    assert over.status_code == 403 and "budget" in over.text
    # a key limited to some routes
    only = json.loads(
        ok(mlops(proxy.home, "llm", "keys", "create", "only", "--model", "paid", "--json")).stdout
    )
    denied = _post(proxy, only["key"], model="chat")
    assert denied.status_code == 403 and "may not call" in denied.text
    assert _post(proxy, only["key"], model="paid").status_code == 200
    ok(mlops(proxy.home, "llm", "keys", "revoke", key["id"]))
    revoked = _post(proxy, key["key"])
    assert revoked.status_code == 401 and "revoked" in revoked.text
    assert key["key"] not in revoked.text


def test_no_file_or_output_holds_a_secret_value(proxy: Proxy) -> None:
    llm = proxy.home / "llm"
    for name in ("proxy.json", "master_key", "keys.db", "proxy-config.yaml"):
        assert stat.S_IMODE((llm / name).stat().st_mode) == 0o600, name
    config = ok(mlops(proxy.home, "llm", "config")).stdout
    status = ok(mlops(proxy.home, "llm", "status", "--json")).stdout
    files = [(llm / n).read_bytes().decode("utf-8", "replace") for n in ("proxy-config.yaml", "routes.yaml")]
    master = (llm / "master_key").read_text().strip()
    caller = json.loads((llm / "proxy.json").read_text())["caller_key"]
    for text in (config, status, *files, (llm / "proxy.log").read_text()):
        assert PROVIDER_KEY not in text and master not in text
    assert caller not in status and "os.environ/PAID_KEY" in config
    assert json.loads(status)["ready"] is True


def test_the_gateway_shows_the_running_proxy(proxy: Proxy) -> None:
    gateway = Server(proxy.home)
    gateway.start()
    try:
        with gateway.client(gateway.admin_key) as admin:
            got = admin.get("/api/v1/models").json()
    finally:
        gateway.stop()
    assert {r["name"] for r in got["routes"]} == {"chat", "paid", "embed"}
    assert got["proxy"]["running"] is True and got["proxy"]["ready"] is True
    assert got["proxy"]["url"] == proxy.url and "caller_key" not in got["proxy"]
    assert PROVIDER_KEY not in json.dumps(got)


def test_a_second_up_is_refused_located(proxy: Proxy) -> None:
    again = mlops(proxy.home, "llm", "up", "--port", str(free_port()), env=proxy.env)
    assert again.returncode == 2 and "already runs" in again.stderr and "mlops llm down" in again.stderr


def test_down_leaves_no_process(tmp_path: Path) -> None:
    """Its own proxy (a start costs seconds, but stopping the module's one would break the others)."""
    home = tmp_path / "home"
    ok(mlops(home, "llm", "routes", "add", "--name", "chat", "--model", "openai/fake", "--api-base",
             "http://127.0.0.1:9/v1"))  # fmt: skip
    ok(mlops(home, "llm", "up", "--port", str(free_port())))
    marker = str(home / "llm" / "proxy-config.yaml")
    assert processes_with(marker)
    ok(mlops(home, "llm", "down"))
    assert none_left(marker)
    assert not (home / "llm" / "proxy.json").exists()
    assert proxy_access(home, {}) is None


def test_the_assistant_repairs_through_the_proxy_and_waits_for_a_slow_answer(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's round: the proxy answers an invalid spec, then (slowly) a valid one after the repair
    message; the assistant found the proxy itself (proxy.json) and its calls went through it."""
    from mlops_nocode.ai.model import route_model
    from mlops_nocode.ai.session import build
    from mlops_nocode.ai.settings import AssistantSettings
    from mlops_nocode.catalogue.service import Catalogues
    from mlops_nocode.compiler.check import check_doc
    from tests.ai.support import PIPELINE, fenced

    monkeypatch.setenv("MLOPS_HOME", str(proxy.home))
    caller = json.loads((proxy.home / "llm" / "proxy.json").read_text())["caller_key_id"]
    info = VirtualKeys(keys_path(proxy.home)).get(caller)
    before = info.requests if info is not None else 0
    proxy.free.reset()
    broken = PIPELINE.replace("inputs: {dataset: load.dataset}", "inputs: {dataset: load.datasets}")
    proxy.free.script(chat=[fenced(broken), {**fenced(PIPELINE), "delay": 2}])
    settings = AssistantSettings(model="chat")
    cats = Catalogues.configured(check_doc)
    model = route_model(proxy.home, settings, lambda names: {}, {})
    result = build(cats.resolver(), model, settings, cats).write("a random forest on iris", "pipeline")
    assert result.valid and result.repairs == 1, result.problems
    sent = proxy.free.requests()
    assert len(sent) == 2
    assert "dangling connection 'load.datasets'" in sent[1]["body"]["messages"][-1]["content"]
    _recorded(proxy, caller, before + 2)  # both calls were made with the platform's key at the proxy
