"""Calls to the MLOps No-Code gateway, shared by the other scripts of f/mlops (standard library only).

The gateway URL and API key come from the Windmill variables f/mlops/gateway_url and f/mlops/gateway_key
(`$var:` inputs of the flows): never write a key in a script or a flow.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class GatewayError(RuntimeError):
    """The gateway refused the call; the message holds its located problems (what, where, fix)."""


def call(url: str, key: str, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
    """One JSON request to the gateway; returns the decoded answer or raises GatewayError."""
    if not url.startswith(("http://", "https://")):
        raise GatewayError("gateway_url must start with http:// or https://")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as e:
        raise GatewayError(f"{method} {path}: HTTP {e.code}: {_problems(e.read().decode(errors='replace'))}") from None
    return json.loads(text) if text else None


def _problems(text: str) -> str:
    try:
        detail = json.loads(text)
    except ValueError:
        return text[:500]
    problems = detail.get("problems") if isinstance(detail, dict) else None
    if isinstance(problems, list):
        return "; ".join(f"{p.get('where')}: {p.get('what')} (fix: {p.get('fix')})" for p in problems[:20])
    return json.dumps(detail)[:500]


def quoted(segment: str) -> str:
    """A value placed in a URL path, percent-encoded (never able to change the path)."""
    return urllib.parse.quote(str(segment), safe="")
