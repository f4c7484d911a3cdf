"""A small client for RunPod's GraphQL API (httpx): GPU types with their lowest prices, and a pod's state.

Shapes as RunPod's own clients use them: POST https://api.runpod.io/graphql with `{"query", "variables"}`
and `Authorization: Bearer <key>` (runpod/terraform-provider-runpod internal/provider/client), queries
`gpuTypes { ... lowestPrice(input: {gpuCount: 1}) { ... } }` and `pod(input: {podId})` (runpod/runpod-python
runpod/api/queries). Errors come as HTTP 401 or as `{"errors": [{"message": ...}]}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from mlops_nocode.providers._cloud import http_error
from mlops_nocode.providers.base import ProviderError

TIMEOUT = 30.0

GPU_TYPES = """query GpuTypes {
  gpuTypes {
    id
    displayName
    memoryInGb
    secureCloud
    communityCloud
    maxGpuCount
    lowestPrice(input: {gpuCount: 1}) {
      minimumBidPrice
      uninterruptablePrice
      minVcpu
      minMemory
      stockStatus
    }
  }
}"""

POD = """query Pod($podId: String!) {
  pod(input: {podId: $podId}) {
    id
    desiredStatus
    lastStatusChange
    costPerHr
    gpuCount
    machineId
    uptimeSeconds
  }
}"""


def api_key(env: Mapping[str, str]) -> str:
    key = env.get("RUNPOD_API_KEY", "")
    if not key:
        raise ProviderError(
            "the RunPod API key is missing",
            "environment: RUNPOD_API_KEY",
            "create an API key in the RunPod console (Settings > API Keys) and export RUNPOD_API_KEY",
        )
    return key


def query(
    env: Mapping[str, str], url: str, text: str, variables: Mapping[str, Any], doing: str
) -> dict[str, Any]:
    """One GraphQL request; its `data`, or a ProviderError (the key never appears in a message)."""
    key = api_key(env)
    where = f"RunPod GraphQL API ({url})"
    try:
        response = httpx.post(
            url,
            json={"query": text, "variables": dict(variables)},
            headers={"Authorization": f"Bearer {key}", "User-Agent": "mlops-nocode"},
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as e:
        raise ProviderError(
            f"cannot reach the RunPod API while {doing}: {type(e).__name__}",
            where,
            "check the network, or RUNPOD_GRAPHQL_URL",
        ) from None
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    message = ""
    if isinstance(errors, list) and errors:
        first = errors[0]
        message = str(first.get("message", first) if isinstance(first, dict) else first)
    if response.status_code >= 400:
        raise http_error("runpod", doing, response.status_code, message or response.text, where, (key,))
    if message:
        status = 401 if "unauthor" in message.lower() or "api key" in message.lower() else 400
        raise http_error("runpod", doing, status, message, where, (key,))
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ProviderError(
            f"the RunPod API answered without data while {doing}",
            where,
            "retry later; report it if it persists",
        )
    return data


def gpu_types(env: Mapping[str, str], url: str) -> list[dict[str, Any]]:
    data = query(env, url, GPU_TYPES, {}, "listing GPU types")
    types = data.get("gpuTypes")
    return [t for t in types if isinstance(t, dict)] if isinstance(types, list) else []


def pod(env: Mapping[str, str], url: str, pod_id: str) -> dict[str, Any] | None:
    """The pod, or None when RunPod no longer knows it."""
    try:
        data = query(env, url, POD, {"podId": pod_id}, "reading the pod's state")
    except ProviderError as e:
        if "not found" in e.what.lower() or "no longer knows" in e.what:
            return None
        raise
    found = data.get("pod")
    return found if isinstance(found, dict) else None
