"""How a caller reaches the platform's LiteLLM proxy, when one is configured: LITELLM_PROXY_URL and
LITELLM_PROXY_KEY (an external proxy), else the proxy `mlops llm up` runs for MLOPS_HOME (its state file
MLOPS_HOME/llm/proxy.json and the key the platform issued for callers), while its process lives (a
state file left by a proxy that died, e.g. across a reboot, is ignored). None: call routes directly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops_nocode.integrations.litellm.client import ProxyAccess

PROXY_STATE = "llm/proxy.json"


def proxy_access(home: Path, environ: Mapping[str, str]) -> ProxyAccess | None:
    """The proxy to call models through, or None to call each route directly."""
    url, key = environ.get("LITELLM_PROXY_URL"), environ.get("LITELLM_PROXY_KEY")
    if url and key:
        return ProxyAccess(url.rstrip("/"), key)
    from mlops_nocode.integrations.litellm.proxy import running  # it imports this module

    state = running(home)
    if state is None or not state.url or not state.caller_key:
        return None
    return ProxyAccess(state.url, state.caller_key)
