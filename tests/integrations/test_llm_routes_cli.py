"""`mlops llm` without a proxy running: routes and their located errors, the rendered configuration
(never a secret value, hostile strings kept in their string), keys, and what `up` refuses before it
starts anything (a weak master key, a secret the routes need and nobody gave)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_nocode.integrations.litellm.proxy_config import render_config
from mlops_nocode.integrations.litellm.routes import ModelRoute
from tests.conftest import none_left, processes_with
from tests.fakellm import free_port


def mlops(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    full = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
    full.update({"MLOPS_HOME": str(home), "COLUMNS": "200", **(env or {})})
    cmd = [sys.executable, "-m", "mlops_nocode.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=120)


def test_routes_add_list_remove(tmp_path: Path) -> None:
    add = mlops(tmp_path, "llm", "routes", "add", "--name", "local", "--model", "ollama/llama3",
                "--api-base", "http://127.0.0.1:11434/", "--json")  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["api_base"] == "http://127.0.0.1:11434"
    fb = mlops(tmp_path, "llm", "routes", "add", "--name", "gpt", "--model", "openai/gpt-4o-mini",
               "--key-secret", "OPENAI_API_KEY", "--fallback", "local")  # fmt: skip
    assert fb.returncode == 0, fb.stderr
    listed = json.loads(mlops(tmp_path, "llm", "routes", "list", "--json").stdout)
    assert [r["name"] for r in listed] == ["local", "gpt"]
    assert mlops(tmp_path, "llm", "routes", "remove", "local").returncode == 0
    missing = mlops(tmp_path, "llm", "routes", "remove", "local")
    assert missing.returncode == 2 and "no model route 'local'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "where", "what"),
    [
        (["--name", "bad name"], "--name", "route name"),
        (["--name", "../etc"], "--name", "route name"),
        (["--model", "openai/x\n; rm -rf /"], "--model", "model"),
        (["--api-base", "file:///etc/passwd"], "--api-base", "http(s) URL"),
        (["--api-base", "http://user:pw@host/v1"], "--api-base", "credentials"),
        (["--key-secret", "sk-live-123$(id)"], "--key-secret", "secret name"),
        (["--kind", "image"], "--kind", ""),
        (["--fallback", "nowhere"], "--fallback", "not a configured route"),
        (["--price-in", "-1"], "--price-in", ""),
    ],
)
def test_bad_route_values_are_located_and_nothing_is_saved(
    tmp_path: Path, args: list[str], where: str, what: str
) -> None:
    base = {"--name": "r", "--model": "openai/x"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv]
    got = mlops(tmp_path, "llm", "routes", "add", *flat)
    assert got.returncode == 2, got.stderr
    assert where in got.stderr and what in got.stderr and "Traceback" not in got.stderr
    assert not (tmp_path / "llm" / "routes.yaml").exists()


def test_config_holds_references_never_values_and_hostile_strings_stay_strings() -> None:
    hostile = "openai/x'\"}:{a:b}#&*!|>"
    routes = {
        "a": ModelRoute(name="a", model=hostile, api_key_secret="PROVIDER_KEY", fallbacks=["b", "ghost"]),
        "b": ModelRoute(name="b", model="ollama/llama3", api_base="http://127.0.0.1:11434"),
    }
    config = yaml.safe_load(yaml.safe_dump(render_config(routes)))
    a, b = config["model_list"]
    assert a["litellm_params"] == {"model": hostile, "api_key": "os.environ/PROVIDER_KEY"}
    assert b["litellm_params"]["api_key"] == "sk-no-key-configured"  # never a key from the environment
    assert config["router_settings"]["fallbacks"] == [{"a": ["b"]}]  # unknown routes dropped
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"


def test_config_out_file_and_k8s_flavour(tmp_path: Path) -> None:
    mlops(
        tmp_path,
        "llm",
        "routes",
        "add",
        "--name",
        "gpt",
        "--model",
        "openai/gpt-4o-mini",
        "--key-secret",
        "OK",
    )
    out = tmp_path / "config.yaml"
    assert mlops(tmp_path, "llm", "config", "--out", str(out)).returncode == 0
    assert "custom_auth" in out.read_text()
    k8s = yaml.safe_load(mlops(tmp_path, "llm", "config", "--k8s").stdout)
    assert "custom_auth" not in k8s["general_settings"]
    bad = mlops(tmp_path, "llm", "config", "--out", str(tmp_path / "no" / "such" / "dir.yaml"))
    assert bad.returncode == 2 and "--out" in bad.stderr


@pytest.mark.parametrize("weak", ["sk-1234", "xQ9z", "sk-changeme-changeme-changeme-changeme", "a" * 40])
def test_a_weak_master_key_is_refused_before_anything_starts(tmp_path: Path, weak: str) -> None:
    got = mlops(tmp_path, "llm", "up", "--port", "1", env={"LITELLM_MASTER_KEY": weak})
    assert got.returncode == 2 and "LITELLM_MASTER_KEY" in got.stderr and "too weak" in got.stderr
    assert weak not in got.stderr
    assert not processes_with(str(tmp_path / "llm" / "proxy-config.yaml"))
    assert not (tmp_path / "llm" / "proxy.json").exists()


def test_a_secret_the_routes_need_must_be_given(tmp_path: Path) -> None:
    mlops(tmp_path, "llm", "routes", "add", "--name", "gpt", "--model", "openai/gpt-4o-mini",
          "--key-secret", "NOT_GIVEN_KEY")  # fmt: skip
    got = mlops(tmp_path, "llm", "up", "--port", "1")
    assert got.returncode == 2 and "NOT_GIVEN_KEY" in got.stderr and "export" in got.stderr
    assert not (tmp_path / "llm" / "proxy.json").exists()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    made = mlops(tmp_path, "llm", "keys", "create", "ci", "--budget", "2.5", "--model", "chat")
    value = made.stdout.strip()
    assert made.returncode == 0 and value.startswith("sk-mlops-") and len(value) > 40
    listed = json.loads(mlops(tmp_path, "llm", "keys", "list", "--json").stdout)
    assert listed[0]["name"] == "ci" and listed[0]["budget_usd"] == 2.5 and listed[0]["models"] == ["chat"]
    assert value not in json.dumps(listed)
    assert value not in (tmp_path / "llm" / "keys.db").read_bytes().decode("latin-1")
    assert mlops(tmp_path, "llm", "keys", "revoke", listed[0]["id"]).returncode == 0
    again = mlops(tmp_path, "llm", "keys", "revoke", listed[0]["id"])
    assert again.returncode == 2 and "no live key" in again.stderr
    bad = mlops(tmp_path, "llm", "keys", "create", "$(id);x")
    assert bad.returncode == 2 and "key name" in bad.stderr
    assert mlops(tmp_path, "llm", "status", "--json").returncode == 0


def test_a_proxy_not_ready_in_time_is_stopped_with_its_children(tmp_path: Path) -> None:
    got = mlops(tmp_path, "llm", "up", "--port", str(free_port()), "--timeout", "1")
    assert got.returncode == 2 and "was not ready within 1s" in got.stderr, got.stderr
    master = (tmp_path / "llm" / "master_key").read_text().strip()
    assert master not in got.stderr and master not in got.stdout
    assert none_left(str(tmp_path / "llm" / "proxy-config.yaml"))
    assert not (tmp_path / "llm" / "proxy.json").exists()
    keys = json.loads(mlops(tmp_path, "llm", "keys", "list", "--json").stdout)
    assert all(k["revoked"] for k in keys)  # the callers' key it made is revoked again


def test_up_takes_the_secrets_stored_in_the_gateway_vault(tmp_path: Path) -> None:
    from mlops_nocode.runs.db import Database
    from mlops_nocode.runs.vault import SecretStore
    from mlops_nocode.settings import Settings, resolve_secret_key

    settings = Settings(mlops_home=tmp_path, database_url=None)
    db = Database(settings.db_url)
    db.migrate(settings.home)
    SecretStore(db, resolve_secret_key(settings)).put("VAULT_KEY", "sk-stored-Hq3Lw9Zr2Vx8")
    db.close()
    mlops(tmp_path, "llm", "routes", "add", "--name", "gpt", "--model", "openai/gpt-4o-mini",
          "--key-secret", "VAULT_KEY")  # fmt: skip
    got = mlops(tmp_path, "llm", "up", "--port", str(free_port()), "--timeout", "1", env={"DATABASE_URL": ""})
    assert got.returncode == 2 and "VAULT_KEY" not in got.stderr  # found: it went on to start the proxy
    assert "was not ready" in got.stderr and "sk-stored-Hq3Lw9Zr2Vx8" not in got.stderr + got.stdout
    assert none_left(str(tmp_path / "llm" / "proxy-config.yaml"))
