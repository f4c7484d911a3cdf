"""The platform's LiteLLM proxy on this machine (`mlops llm up|down|status`): a real `litellm` process on
127.0.0.1 in its own session, configured from the model routes (proxy_config.py), guarded by a strong
master key (MLOPS_HOME/llm/master_key, 0600, or LITELLM_MASTER_KEY) and the platform's keys (vkeys.py).
Its environment is built from an allow-list: the secrets the routes name, the master key and the key
file's path, and no provider key of the caller's. Its state is MLOPS_HOME/llm/proxy.json (0600: it
holds the key platform callers use, see access.py)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlops_nocode.integrations.litellm.access import PROXY_STATE
from mlops_nocode.integrations.litellm.proxy_config import MASTER_KEY_ENV, config_yaml, secret_names
from mlops_nocode.integrations.litellm.routes import load_routes
from mlops_nocode.integrations.litellm.vkeys import KEYS_ENV, VirtualKeys, keys_path
from mlops_nocode.settings import weak_secret, write_private
from mlops_nocode.spec import Problem, SpecError

MASTER_KEY_FILE = "llm/master_key"
CONFIG_FILE = "llm/proxy-config.yaml"
LOG_FILE = "llm/proxy.log"
CALLER_KEY_NAME = "platform-callers"
KNOWN_WEAK = frozenset({"sk-1234", "sk-12345", "sk-123456789", "sk-master", "sk-litellm"})
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
              "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
              "no_proxy")  # fmt: skip


@dataclass
class ProxyState:
    """A proxy `mlops llm up` started: where, which process, and the platform callers' key."""

    url: str
    pid: int
    port: int
    caller_key: str
    caller_key_id: str
    started: float
    log: str
    config: str

    def public(self) -> dict[str, Any]:
        """The state without the caller key (for status output and the API)."""
        return {k: v for k, v in self.__dict__.items() if k != "caller_key"}


def _problem(what: str, where: str, fix: str) -> SpecError:
    return SpecError(Problem(what, where, fix))


def check_master_key(value: str, where: str = MASTER_KEY_ENV) -> None:
    """SpecError when `value` is too weak to guard the proxy (the checks of SECRET_KEY, plus the keys of
    LiteLLM's documentation)."""
    reason = "it is a default from LiteLLM's documentation" if value.strip() in KNOWN_WEAK else None
    reason = reason or weak_secret(value)
    if reason is not None:
        raise _problem(
            f"the proxy's master key is too weak: {reason}",
            where,
            f"unset {MASTER_KEY_ENV} to let the platform generate one, or set it to `sk-` and 32+ random "
            "characters (python -c 'import secrets; print(\"sk-\" + secrets.token_urlsafe(32))')",
        )


def master_key(home: Path, environ: Mapping[str, str]) -> str:
    """LITELLM_MASTER_KEY when set (checked), else MLOPS_HOME/llm/master_key (generated 0600 on first use)."""
    given = environ.get(MASTER_KEY_ENV)
    if given:
        check_master_key(given)
        return given
    path = home / MASTER_KEY_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        check_master_key(stored, str(path))
        return stored
    value = "sk-" + secrets.token_urlsafe(32)
    write_private(path, value + "\n")
    return value


def _alive(pid: int) -> bool:
    try:
        import psutil

        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and "litellm" in " ".join(p.cmdline())
    except Exception:
        return False


def read_state(home: Path) -> ProxyState | None:
    """The state of the proxy `mlops llm up` started for `home`, when one is recorded."""
    try:
        data = json.loads((home / PROXY_STATE).read_text(encoding="utf-8"))
        return ProxyState(**data)
    except (OSError, ValueError, TypeError):
        return None


def running(home: Path) -> ProxyState | None:
    """The recorded proxy when its process is alive."""
    state = read_state(home)
    return state if state is not None and _alive(state.pid) else None


def ready(url: str, timeout: float = 2.0) -> bool:
    """Whether the proxy at `url` answers its readiness probe."""
    try:
        return httpx.get(f"{url}/health/readiness", timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _environment(home: Path, environ: Mapping[str, str], key: str, names: list[str]) -> dict[str, str]:
    missing = [n for n in names if not environ.get(n)]
    if missing:
        raise _problem(
            f"the model routes need secret(s) {', '.join(missing)}, which are not set",
            "environment",
            f"export {missing[0]}=... (the provider key) before `mlops llm up`, or remove the routes that "
            "name it (`mlops llm routes remove NAME`)",
        )
    env = {k: environ[k] for k in PASSED_ENV if k in environ}
    env.update({n: environ[n] for n in names})
    env[MASTER_KEY_ENV] = key
    env[KEYS_ENV] = str(keys_path(home))
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # offline: the price map shipped with LiteLLM
    env["LITELLM_TELEMETRY"] = "False"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def litellm_command() -> str:
    """The `litellm` console script of this environment (the `llm` extra)."""
    script = Path(sys.executable).with_name("litellm")
    if not script.exists():
        raise _problem(
            "the LiteLLM proxy is not installed in this environment",
            "mlops llm up",
            "pip install 'mlops-nocode[llm]'",
        )
    return str(script)


def _log_tail(path: Path, hide: list[str], lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for value in hide:
        text = text.replace(value, "***")
    return "\n".join(text.splitlines()[-lines:])


def up(
    home: Path,
    environ: Mapping[str, str],
    *,
    port: int = 4000,
    ready_timeout: float = 120.0,
    retries: int = 2,
    progress: Callable[[str], None] = lambda _: None,
) -> ProxyState:
    """Start the proxy and wait until it is ready; SpecError (located) for what stops it starting."""
    if (current := running(home)) is not None:
        raise _problem(
            f"a LiteLLM proxy already runs at {current.url} (pid {current.pid})",
            "mlops llm up",
            "stop it first: `mlops llm down`",
        )
    command = litellm_command()
    routes = load_routes(home)
    key = master_key(home, environ)
    env = _environment(home, environ, key, secret_names(routes))
    config = home / CONFIG_FILE
    write_private(config, config_yaml(routes, num_retries=retries))
    store = VirtualKeys(keys_path(home))
    for old in store.list(include_revoked=False):
        if old.internal:
            store.revoke(old.id)
    caller, caller_value = store.create(CALLER_KEY_NAME, internal=True)
    log_path = home / LOG_FILE
    url = f"http://127.0.0.1:{port}"
    progress(f"starting LiteLLM on {url} with {len(routes)} route(s)")
    with open(log_path, "ab") as log:
        os.chmod(log_path, 0o600)
        proc = subprocess.Popen(
            [command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=str(config.parent), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + ready_timeout
    while not ready(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = "exited" if proc.poll() is not None else f"was not ready within {ready_timeout:g}s"
            _stop_group(proc.pid)
            store.revoke(caller.id)
            tail = _log_tail(log_path, [key, caller_value, *(env[n] for n in secret_names(routes))])
            raise _problem(
                f"the LiteLLM proxy {why}; the end of its log ({log_path}):\n{tail}",
                "mlops llm up",
                "read the log; if the port is taken, pick another with --port",
            )
        progress("waiting for the proxy's readiness probe")
        time.sleep(0.2)
    state = ProxyState(url, proc.pid, port, caller_value, caller.id, time.time(), str(log_path), str(config))
    write_private(home / PROXY_STATE, json.dumps(state.__dict__, indent=2))
    return state


def _stop_group(pid: int, timeout: float = 15.0) -> None:
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    if alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)


def down(home: Path) -> ProxyState | None:
    """Stop the proxy and every process it started; revoke the platform callers' key; forget the state.
    The state that was recorded, or None when no proxy was."""
    state = read_state(home)
    if state is None:
        return None
    if _alive(state.pid):
        _stop_group(state.pid)
    VirtualKeys(keys_path(home)).revoke(state.caller_key_id)
    (home / PROXY_STATE).unlink(missing_ok=True)
    return state
