"""The platform's LiteLLM proxy (`mlops llm up`) in front of the scripted OpenAI-compatible backend of the
tests (it answers at once: the figures are overhead, not model time): seconds until the proxy is ready,
then N sequential chat calls with the platform client, directly and through the proxy (whose every call
also goes through the platform's key check and spend callback). `python -m bench.llm_proxy [--quick]`"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from mlops_nocode.integrations.litellm import proxy
from mlops_nocode.integrations.litellm.access import proxy_access
from mlops_nocode.integrations.litellm.client import chat
from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.fakellm import FakeLLM, free_port


def main(quick: bool = False) -> list[dict[str, Any]]:
    n, repeat = (10, 2) if quick else (30, 3)
    home = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    backend = FakeLLM()
    messages = [{"role": "user", "content": "hello"}]
    try:
        save_route(home, ModelRoute(name="chat", model="openai/fake", api_base=backend.url))
        env = {k: v for k, v in os.environ.items() if k != "LITELLM_MASTER_KEY"}
        started = time.perf_counter()
        proxy.up(home, env, port=free_port(), retries=0)
        ready = time.perf_counter() - started
        via = proxy_access(home, {})

        def calls(through: Any) -> None:
            for _ in range(n):
                chat(home, "chat", messages, secrets={}, via=through, retries=0)

        calls(None)  # imports litellm, warms the connection pools
        calls(via)
        direct = best_of(lambda: calls(None), repeat)
        proxied = best_of(lambda: calls(via), repeat)
    finally:
        proxy.down(home)
        backend.stop()
    rows = [
        row("mlops llm up until /health/readiness answers", ready, 1),
        row(f"{n} chat calls, SDK straight to the backend", direct, n),
        row(f"{n} chat calls through the proxy (key check, spend)", proxied, n, direct, "direct"),
    ]
    show("LiteLLM proxy", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
