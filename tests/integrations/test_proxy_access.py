"""Which proxy callers use: a state file left by a proxy that died is ignored (calls go to the routes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlops_nocode.integrations.litellm.access import proxy_access


def _state(home: Path, pid: int) -> None:
    (home / "llm").mkdir(parents=True)
    state = {"url": "http://127.0.0.1:4000", "pid": pid, "port": 4000, "caller_key": "sk-caller-xyz",
             "caller_key_id": "k1", "started": 0.0, "log": "x", "config": "y"}  # fmt: skip
    (home / "llm" / "proxy.json").write_text(json.dumps(state))


def test_a_dead_proxy_is_not_used_a_live_one_is(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass", "litellm"])
    dead.wait()
    _state(tmp_path / "a", dead.pid)
    assert proxy_access(tmp_path / "a", {}) is None

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "litellm"])
    try:
        _state(tmp_path / "b", live.pid)
        via = proxy_access(tmp_path / "b", {})
        assert via is not None and via.url == "http://127.0.0.1:4000" and via.key == "sk-caller-xyz"
    finally:
        live.kill()
        live.wait()
    env = {"LITELLM_PROXY_URL": "http://proxy.example:4000/", "LITELLM_PROXY_KEY": "sk-ext"}
    assert proxy_access(tmp_path / "a", env) == proxy_access(tmp_path / "b", env)
    assert proxy_access(tmp_path / "a", env).url == "http://proxy.example:4000"  # type: ignore[union-attr]
