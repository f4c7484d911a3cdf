"""`mlops n8n push`: the shipped workflows (and exported pipelines) made ready for one n8n and installed.

`prepare` writes the gateway URL (and the notify URL when given) where the shipped JSON reads
`$env.MLOPS_GATEWAY_URL` / `$env.MLOPS_NOTIFY_URL` (URLs only: no key ever goes into a workflow);
`install` creates the gateway credential (httpHeaderAuth `Authorization: Bearer <key>`), points every
gateway call at it, creates or updates each workflow by name and activates it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from mlops_nocode.integrations.n8n.client import Change, N8n
from mlops_nocode.integrations.n8n.nodes import CREDENTIAL_NAME, CREDENTIAL_TYPE, GATEWAY_URL, NOTIFY_URL
from mlops_nocode.integrations.n8n.shipped import FILES, shipped_dir
from mlops_nocode.spec import Problem, SpecError


def shipped_workflows() -> list[dict[str, Any]]:
    """The workflows of deploy/n8n (a located problem when one is missing or broken)."""
    out = []
    for file in FILES:
        path = shipped_dir() / file
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise SpecError(
                Problem(f"cannot read the shipped workflow: {e}", str(path), "reinstall mlops-nocode")
            ) from None
    return out


def _replace(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _replace(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, old, new) for v in value]
    return value


def prepare(wf: dict[str, Any], gateway_url: str | None, notify_url: str | None) -> dict[str, Any]:
    """`wf` with the URLs written in (callers check they are http(s) URLs without braces)."""
    out = copy.deepcopy(wf)
    for n in out["nodes"]:
        if gateway_url:
            n["parameters"] = _replace(n["parameters"], GATEWAY_URL, gateway_url.rstrip("/"))
        if notify_url:
            n["parameters"] = _replace(n["parameters"], NOTIFY_URL, notify_url)
    return out


def with_credential(wf: dict[str, Any], cred: dict[str, str]) -> dict[str, Any]:
    """`wf` with every gateway call using credential `cred` ({id, name})."""
    out = copy.deepcopy(wf)
    for n in out["nodes"]:
        if CREDENTIAL_TYPE in (n.get("credentials") or {}):
            n["credentials"][CREDENTIAL_TYPE] = dict(cred)
    return out


def install(n8n: N8n, workflows: list[dict[str, Any]], key: str, activate: bool) -> list[Change]:
    """The gateway credential (in place by name), then each workflow created or updated by name (never a
    second one with the same name), pointed at that credential, and activated."""
    existing: dict[str, dict[str, Any]] = {}
    for wf in n8n.workflows():
        existing.setdefault(str(wf.get("name")), wf)
    data = {"name": "Authorization", "value": f"Bearer {key}"}
    cred, change = n8n.credential(CREDENTIAL_NAME, CREDENTIAL_TYPE, data)
    changes = [change]
    for wf in workflows:
        wf_id, change = n8n.put_workflow(with_credential(wf, cred), existing.get(wf["name"]))
        changes.append(change)
        if activate:
            changes.append(n8n.activate(wf_id, wf["name"]))
    return changes
