"""The Vast.ai REST API, as the official `vastai` package (PyPI, 1.9.x) calls it, over httpx.

Endpoints and shapes follow that package's source (vastai/api/client.py: base URL, `/api/v0` prefix,
`Authorization: Bearer KEY`; vastai/api/offers.py `search_offers`: POST /api/v0/bundles/;
vastai/api/instances.py `build_create_instance_payload`/`create_instance_from_payload`: PUT
/api/v0/asks/{offer_id}/, `show_instance`: GET /api/v0/instances/{id}/?owner=me, `destroy_instance`:
DELETE /api/v0/instances/{id}/) and the published API reference (https://docs.vast.ai/api-reference/,
OpenAPI files in github.com/vast-ai/docs api-reference/openapi/yaml/). We call the four endpoints with
httpx (already a dependency) rather than import the package: it pins exact versions of cryptography,
pillow and pycares and pulls aiohttp and a PDF library, which would fight the platform's own pins.

Every failure becomes a ProviderError (what, where, fix); the API key is never in a message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.providers.base import ProviderError

if TYPE_CHECKING:
    import httpx

KEY_ENV = "VAST_API_KEY"
KEYS_PAGE = "https://cloud.vast.ai/manage-keys/"
BILLING_PAGE = "https://cloud.vast.ai/billing/"
RETRYABLE = frozenset({429, 502, 503, 504})  # as vastai/api/client.py _RETRYABLE_STATUS


class VastaiSettings(BaseSettings):
    """Vast.ai settings, read from the environment (the API key itself is read only where it is used)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    vast_url: str = Field(
        default="https://console.vast.ai",
        pattern=r"^https?://[^\s/?#]+$",
        description="the API's base URL (same variable as the official CLI)",
    )
    vastai_runner_image: str = Field(
        default="ghcr.io/mlops-nocode/runner:0.1.0-cuda",
        pattern=r"^[a-z0-9][a-z0-9._/:@-]{0,254}$",
        description="the runner image instances start (the CUDA variant of deploy/docker's runner)",
    )
    vastai_min_reliability: float = Field(
        default=0.95, ge=0, le=1, description="offers of hosts less reliable than this are never rented"
    )
    vastai_disk_gb: float = Field(default=20, ge=8, le=100_000, description="disk per instance (GB)")
    vastai_timeout: float = Field(default=30, gt=0, le=600, description="seconds per API request")
    vastai_retries: int = Field(default=3, ge=1, le=10, description="tries on 429/502/503/504")
    vastai_retry_wait: float = Field(default=1.0, ge=0, le=60, description="first wait between tries")


class VastApiError(ProviderError):
    """A refused or failed API call; `kind` is one of auth, forbidden, credit, quota, gone, unreachable,
    server (5xx), other (what the provider decides on: a `gone` offer is skipped for the next one)."""

    def __init__(self, kind: str, what: str, where: str, fix: str) -> None:
        super().__init__(what, where, fix)
        self.kind = kind


def settings() -> VastaiSettings:
    return VastaiSettings()


def api_key(env: Mapping[str, str]) -> str:
    key = env.get(KEY_ENV, "")
    if not key.strip():
        raise ProviderError(
            "no Vast.ai API key: VAST_API_KEY is not set",
            KEY_ENV,
            f"create a key at {KEYS_PAGE} and export VAST_API_KEY=... where the platform runs",
        )
    return key


def _message(response: httpx.Response, key: str) -> str:
    """The API's own words for a failure (`msg`, `error`, `detail`), cut short, the key masked."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "msg", "detail") if body.get(k)]
        text = ": ".join(parts)
    else:
        text = response.text
    text = " ".join(text.split())[:300] or response.reason_phrase
    return text.replace(key, "***") if key else text


def error_for(response: httpx.Response, action: str, key: str) -> VastApiError:
    """The ProviderError for a refused request, by status and the API's error words."""
    code, msg = response.status_code, _message(response, key)
    said = f"{action}: Vast.ai answered {code} ({msg})"
    low = msg.lower()
    if "credit" in low or "balance" in low or code == 402:
        return VastApiError(
            "credit",
            f"{said}: the account has too little credit",
            "Vast.ai account balance",
            f"add credit at {BILLING_PAGE} (instances are prepaid from the balance), then deploy again",
        )
    if code == 401:
        return VastApiError(
            "auth", f"{said}: the API key was refused", KEY_ENV, f"check or renew the key at {KEYS_PAGE}"
        )
    if code == 403:
        return VastApiError(
            "forbidden",
            f"{said}: the API key may not do this",
            KEY_ENV,
            f"give the key the instance read/write permissions at {KEYS_PAGE}, or use another key",
        )
    if code == 429:
        return VastApiError(
            "quota",
            f"{said}: request quota exceeded",
            "Vast.ai API rate limit",
            "wait and try again (the daily search quota resets at midnight UTC)",
        )
    if code in (404, 410):
        return VastApiError(
            "gone",
            f"{said}: the offer or instance no longer exists",
            "Vast.ai marketplace",
            "plan again: marketplace offers come and go",
        )
    return VastApiError(
        "server" if code >= 500 else "other",
        said,
        f"{response.request.method} {response.request.url.path}",
        "check the request in the rendered bundle; a 5xx is Vast.ai's side: try again later",
    )


class VastApi:
    """The four calls the provider makes. Each returns the parsed JSON answer or raises ProviderError."""

    def __init__(self, env: Mapping[str, str], conf: VastaiSettings | None = None) -> None:
        import httpx

        self.conf = conf or settings()
        self.key = api_key(env)
        self._client = httpx.Client(
            base_url=self.conf.vast_url,
            timeout=self.conf.vastai_timeout,
            headers={"Authorization": f"Bearer {self.key}", "User-Agent": "mlops-nocode"},
            follow_redirects=False,  # the key must not follow a redirect elsewhere
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> VastApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        action: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        ok: frozenset[int] = frozenset({200, 201}),
        idempotent: bool = True,
    ) -> tuple[int, Any]:
        """Send one request (retrying 429/502/503/504 as the official client does, and transport
        errors); returns (status, JSON). A status outside `ok` raises the mapped ProviderError.
        A request that is not `idempotent` (renting) is retried only when it surely did nothing: a 429,
        or a connection that was never made; otherwise a retry could rent twice."""
        import httpx

        retry_status = RETRYABLE if idempotent else frozenset({429})
        retry_errors = (httpx.TransportError,) if idempotent else (httpx.ConnectError, httpx.ConnectTimeout)

        wait = self.conf.vastai_retry_wait
        for attempt in range(self.conf.vastai_retries):
            last = attempt == self.conf.vastai_retries - 1
            try:
                r = self._client.request(method, path, json=body, params=params)
            except httpx.TransportError as e:
                if last or not isinstance(e, retry_errors):
                    raise VastApiError(
                        "unreachable",
                        f"{action}: cannot reach Vast.ai at {self.conf.vast_url} ({type(e).__name__})",
                        "VAST_URL",
                        "check the network from here to console.vast.ai, then try again",
                    ) from None
                time.sleep(wait)
                wait *= 1.5
                continue
            quota = r.status_code == 429 and _json(r).get("error") == "search_quota_exceeded"
            if r.status_code in retry_status and not last and not quota:
                time.sleep(min(_retry_after(r, wait), 60.0))
                wait *= 1.5
                continue
            if r.status_code not in ok:
                raise error_for(r, action, self.key)
            return r.status_code, _json(r)
        raise AssertionError("unreachable")  # pragma: no cover

    def search_offers(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        """POST /api/v0/bundles/ (vastai/api/offers.py search_offers): {"offers": [...]}."""
        _, data = self.request("POST", "/api/v0/bundles/", "search Vast.ai offers", body=dict(query))
        offers = data.get("offers")
        if isinstance(offers, dict):  # the reference's example shows one offer as an object
            offers = [offers]
        return [o for o in offers or [] if isinstance(o, dict)]

    def create_instance(self, offer_id: int, body: Mapping[str, Any]) -> int:
        """PUT /api/v0/asks/{offer_id}/: {"success": true, "new_contract": INSTANCE_ID}."""
        action = f"rent Vast.ai offer {offer_id}"
        path = f"/api/v0/asks/{int(offer_id)}/"
        _, data = self.request("PUT", path, action, body=dict(body), idempotent=False)
        new = data.get("new_contract")
        if not data.get("success", True) or not isinstance(new, int):
            raise ProviderError(
                f"{action}: Vast.ai did not create an instance ({str(data.get('msg', data))[:200]})",
                "Vast.ai marketplace",
                "plan again: the offer may have been taken",
            )
        return new

    def show_instance(self, instance_id: int) -> dict[str, Any] | None:
        """GET /api/v0/instances/{id}/?owner=me: {"instances": {...}} or {"instances": null} when gone."""
        status, data = self.request(
            "GET",
            f"/api/v0/instances/{int(instance_id)}/",
            f"read Vast.ai instance {instance_id}",
            params={"owner": "me"},
            ok=frozenset({200, 404}),
        )
        row = data.get("instances") if status == 200 else None
        return row if isinstance(row, dict) else None

    def destroy_instance(self, instance_id: int) -> bool:
        """DELETE /api/v0/instances/{id}/: True when destroyed now, False when it was already gone
        (404 {"error": "no_such_instance"})."""
        status, _ = self.request(
            "DELETE",
            f"/api/v0/instances/{int(instance_id)}/",
            f"destroy Vast.ai instance {instance_id}",
            body={},
            ok=frozenset({200, 404}),
        )
        return status == 200

    def instances_labelled(self, label: str) -> list[int]:
        """Ids of this account's instances carrying `label` (GET /api/v1/instances/ with select_filters,
        vastai/api/instances.py show_instances_v1): to find one a lost create answer made."""
        import json

        params = {"select_filters": json.dumps({"label": {"eq": label}}), "limit": "25"}
        _, data = self.request("GET", "/api/v1/instances/", "list Vast.ai instances", params=params)
        rows = data.get("instances") or []
        return [int(r["id"]) for r in rows if isinstance(r, dict) and r.get("label") == label]


def _json(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(r: httpx.Response, default: float) -> float:
    try:
        return float(r.headers["Retry-After"])
    except (KeyError, ValueError):
        return default
