"""A real n8n for the whole session: installed by scripts/n8n-install.sh (outside the clone, under a lock:
a CI install in progress is waited for, never started twice), started on 127.0.0.1 with its telemetry off,
its owner and an API key created headlessly, stopped at the end with no process left."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.api.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
OWNER = {"email": "owner@example.org", "firstName": "Mlops", "lastName": "Tests"}


@dataclass
class N8nServer:
    url: str
    api_key: str
    password: str
    email: str
    log: Path
    proc: subprocess.Popen[bytes]

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1", headers={"X-N8N-API-KEY": self.api_key}, timeout=30
        )


def _install() -> Path:
    if shutil.which("npm") is None:
        pytest.fail("the n8n tests need npm (Node >= 20) to install n8n: apt-get install nodejs npm")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "n8n-install.sh")],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/n8n-install.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def n8n_env(folder: Path, port: int) -> dict[str, str]:
    """The environment of a local n8n: loopback only, no telemetry, version checks or templates."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "MLOPS_", "DB_"))},
        "N8N_USER_FOLDER": str(folder),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "N8N_PROTOCOL": "http",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        "N8N_ENCRYPTION_KEY": secrets.token_hex(24),
        "N8N_SECURE_COOKIE": "false",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_DIAGNOSTICS_CONFIG_FRONTEND": "",
        "N8N_DIAGNOSTICS_CONFIG_BACKEND": "",
        "EXTERNAL_FRONTEND_HOOKS_URLS": "",
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),
        "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",
        "NODE_FUNCTION_ALLOW_BUILTIN": "crypto",
        "MLOPS_ALERT_SECRET": "alert-secret-for-tests",
        "N8N_LOG_LEVEL": "info",
    }


def _setup(url: str, password: str) -> str:
    """The owner (POST /rest/owner/setup logs it in), then an API key (POST /rest/api-keys)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/rest/owner/setup", json=OWNER | {"password": password})
        assert r.status_code == 200, r.text
        r = c.get("/rest/api-keys/scopes")
        scopes = r.json()["data"] if r.status_code == 200 else []
        body = {"label": "mlops-tests", "expiresAt": None} | ({"scopes": scopes} if scopes else {})
        r = c.post("/rest/api-keys", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["data"]["rawApiKey"])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    tree = []
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, f"n8n left processes behind: {alive}"


@pytest.fixture(scope="session")
def n8n(tmp_path_factory: pytest.TempPathFactory) -> Iterator[N8nServer]:
    """One real n8n for the session (fails, never skips, when it cannot be installed or started)."""
    home = _install()
    folder = tmp_path_factory.mktemp("n8n")
    port = free_port()
    log = folder / "n8n.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(home / "node_modules" / ".bin" / "n8n"), "start"],
            env=n8n_env(folder, port),
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"n8n exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                # readiness comes with the database; the REST routes are mounted a moment later
                ready = httpx.get(f"{url}/healthz/readiness", timeout=2).status_code == 200
                if ready and httpx.get(f"{url}/rest/settings", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"n8n not ready after 120 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        password = "Mlops-" + secrets.token_urlsafe(12) + "9"
        key = _setup(url, password)
        yield N8nServer(url, key, password, OWNER["email"], log, proc)
    finally:
        _stop(proc)
