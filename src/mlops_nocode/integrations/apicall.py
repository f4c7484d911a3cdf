"""One request to an orchestrator's REST API (n8n, Windmill) with its failures as located Problems: an
unreachable service, or an error answer whose text is cut and cleared of the secrets that were sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from mlops_nocode.spec import Problem, SpecError


def call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    service: str,
    what: str,
    where_unreachable: str,
    fixes: Mapping[int, str],
    secrets: Iterable[str],
    body: Any = None,
    params: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """The answer to `method path`; SpecError at `where_unreachable` when `service` cannot be reached, at
    `what` when it answers an error (`fixes` by status, else "see its logs")."""
    try:
        r = client.request(method, path, json=body, params=params or None)
    except httpx.HTTPError as e:
        raise SpecError(
            Problem(f"cannot reach {service}: {type(e).__name__}", where_unreachable, fixes.get(0, ""))
        ) from None
    if r.status_code >= 400:
        text = r.text[:2000]
        for secret in secrets:  # an answer may echo what was sent
            text = text.replace(secret, "***")
        fix = fixes.get(r.status_code, f"see {service}'s logs")
        raise SpecError(Problem(f"{service} answered {r.status_code}: {text[:300]}", what, fix))
    return r
