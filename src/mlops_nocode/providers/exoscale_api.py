"""A small client for Exoscale's API v2 (httpx), signed with its request signature scheme.

Scheme (https://openapi-v2.exoscale.com/#topic-api-request-signature, as implemented by Exoscale's own
egoscale and requests-exoscale-auth): HMAC-SHA256 with the API secret over
`"<METHOD> <path>\\n<body>\\n<single-valued query arg values, sorted by name, joined>\\n\\n<expires>"`,
sent as the header `Authorization: EXO2-HMAC-SHA256 credential=<key>[,signed-query-args=a;b],expires=<ts>,
signature=<b64>` (on one line).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import httpx

from mlops_nocode.providers._cloud import http_error
from mlops_nocode.providers.base import ProviderError

DEFAULT_ZONE = "ch-gva-2"
TIMEOUT = 30.0


def endpoint(zone: str) -> str:
    return f"https://api-{zone}.exoscale.com/v2"


def authorization(
    key: str,
    secret: str,
    method: str,
    path: str,
    params: Mapping[str, str] | None = None,
    body: bytes = b"",
    expires: int | None = None,
) -> str:
    """The Authorization header value for one request."""
    expires = int(time.time()) + 600 if expires is None else expires
    names = sorted((params or {}).keys())
    values = "".join(str((params or {})[n]) for n in names)
    message = "\n".join([f"{method.upper()} {path}", body.decode("utf-8"), values, "", str(expires)])
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    parts = [f"EXO2-HMAC-SHA256 credential={key}"]
    if names:
        parts.append("signed-query-args=" + ";".join(names))
    parts += [f"expires={expires}", "signature=" + base64.b64encode(digest).decode("ascii")]
    return ",".join(parts)


def credentials(env: Mapping[str, str]) -> tuple[str, str]:
    key, secret = env.get("EXOSCALE_API_KEY", ""), env.get("EXOSCALE_API_SECRET", "")
    if not key or not secret:
        raise ProviderError(
            "Exoscale credentials are missing",
            "environment: EXOSCALE_API_KEY, EXOSCALE_API_SECRET",
            "create an API key in the Exoscale portal (IAM), then export EXOSCALE_API_KEY and "
            "EXOSCALE_API_SECRET",
        )
    return key, secret


def call(env: Mapping[str, str], zone: str, method: str, path: str, doing: str) -> Any:
    """One signed request to `/v2<path>` in `zone`; the parsed JSON answer, or a ProviderError."""
    key, secret = credentials(env)
    url_path = f"/v2{path}"
    headers = {
        "Authorization": authorization(key, secret, method, url_path),
        "Accept": "application/json",
        "User-Agent": "mlops-nocode",
    }
    where = f"Exoscale API {method} {url_path} ({zone})"
    try:
        response = httpx.request(method, endpoint(zone) + path, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as e:
        raise ProviderError(
            f"cannot reach the Exoscale API while {doing}: {type(e).__name__}",
            where,
            "check the network and the zone name (e.g. ch-gva-2, de-fra-1)",
        ) from None
    if response.status_code >= 400:
        raise http_error("exoscale", doing, response.status_code, _message(response), where, (key, secret))
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            f"the Exoscale API answered something that is not JSON while {doing}",
            where,
            "retry later",
        ) from None


def _message(response: httpx.Response) -> str:
    """The server's message (egoscale reads `message`, then `error`, then RFC 9457 `detail`)."""
    try:
        data = response.json()
    except ValueError:
        return response.text
    if isinstance(data, dict):
        for k in ("message", "error", "detail", "title"):
            if isinstance(data.get(k), str) and data[k]:
                return str(data[k])
    return response.text


def list_instance_types(env: Mapping[str, str], zone: str = DEFAULT_ZONE) -> list[dict[str, Any]]:
    data = call(env, zone, "GET", "/instance-type", "listing instance types")
    types = data.get("instance-types") if isinstance(data, dict) else None
    if not isinstance(types, list):
        raise ProviderError(
            "the Exoscale API's instance type list has no 'instance-types'",
            f"Exoscale API GET /v2/instance-type ({zone})",
            "retry later; the API may have changed: report it",
        )
    return [t for t in types if isinstance(t, dict)]


def get_instance(env: Mapping[str, str], zone: str, instance_id: str) -> dict[str, Any] | None:
    """The instance, or None when the API no longer knows it (404)."""
    try:
        data = call(env, zone, "GET", f"/instance/{instance_id}", "reading the instance's state")
    except ProviderError as e:
        if "no longer knows" in e.what:
            return None
        raise
    return data if isinstance(data, dict) else None
