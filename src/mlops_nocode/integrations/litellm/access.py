"""How a caller reaches the platform's LiteLLM proxy, when one is configured: LITELLM_PROXY_URL and
LITELLM_PROXY_KEY (an external proxy), else the proxy `mlops llm up` runs for MLOPS_HOME (its state file
MLOPS_HOME/llm/proxy.json and the key the platform issued for callers). None: call routes directly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mlops_nocode.integrations.litellm.client import ProxyAccess

PROXY_STATE = "llm/proxy.json"


def proxy_access(home: Path, environ: Mapping[str, str]) -> ProxyAccess | None:
    """The proxy to call models through, or None to call each route directly."""
    url, key = environ.get("LITELLM_PROXY_URL"), environ.get("LITELLM_PROXY_KEY")
    if url and key:
        return ProxyAccess(url.rstrip("/"), key)
    try:
        state = json.loads((home / PROXY_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(state, dict) and state.get("url") and state.get("caller_key"):
        return ProxyAccess(str(state["url"]), str(state["caller_key"]))
    return None
