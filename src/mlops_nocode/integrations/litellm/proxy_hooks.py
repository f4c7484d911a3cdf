"""Hooks the platform's LiteLLM proxy loads (named in the config `mlops llm config` renders): `auth`
(general_settings.custom_auth) accepts the master key and the keys the platform issued (vkeys.py), and
refuses unknown, revoked and over-budget keys and models a key may not call; `spend`
(litellm_settings.callbacks) adds each answered call's tokens and cost to the key that made it.

Imported only inside the proxy process (litellm is installed there); the key file comes from
MLOPS_LLM_KEYS_DB, the master key from LITELLM_MASTER_KEY, both in the proxy's environment."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import Request
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth
from litellm.proxy.common_utils.http_parsing_utils import read_request_body

from mlops_nocode.integrations.litellm.vkeys import KEYS_ENV, KeyRefused, VirtualKeys

ALIAS = "mlops:"
log = logging.getLogger("mlops.llm.proxy")


def _keys() -> VirtualKeys:
    return VirtualKeys(Path(os.environ[KEYS_ENV]))


def _refuse(message: str, status: int) -> ProxyException:
    return ProxyException(message=message, type="auth_error", param="api_key", code=status)


async def auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    """LiteLLM's custom_auth: who is calling, or a 401/403 ProxyException."""
    value = api_key.removeprefix("Bearer ").strip()
    if not value:
        raise _refuse("no key: send Authorization: Bearer <key from `mlops llm keys create`>", 401)
    master = os.environ.get("LITELLM_MASTER_KEY", "")
    if master and hmac.compare_digest(value.encode(), master.encode()):
        return UserAPIKeyAuth(
            api_key=value, key_alias=f"{ALIAS}master", user_role=LitellmUserRoles.PROXY_ADMIN
        )
    model: str | None = None
    if request.method == "POST":
        body = await read_request_body(request)
        found = body.get("model") if isinstance(body, dict) else None
        model = found if isinstance(found, str) else None
    try:
        info = await asyncio.to_thread(_keys().check, value, model)
    except KeyRefused as e:
        raise _refuse(str(e), e.status) from None
    return UserAPIKeyAuth(
        api_key=value,
        key_alias=f"{ALIAS}{info.id}",
        models=info.models,
        user_role=LitellmUserRoles.INTERNAL_USER,
    )


class SpendLogger(CustomLogger):
    """Adds each successful call's tokens and cost to the key that made it."""

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        alias = str((payload.get("metadata") or {}).get("user_api_key_alias") or "")
        key_id = alias.removeprefix(ALIAS)
        if not alias.startswith(ALIAS) or key_id == "master":
            return
        try:
            await asyncio.to_thread(
                _keys().record,
                key_id,
                int(payload.get("prompt_tokens") or 0),
                int(payload.get("completion_tokens") or 0),
                float(payload.get("response_cost") or 0.0),
            )
        except Exception:  # a spend record must never fail the call it records
            log.exception("could not record the spend of key %s", key_id)


spend = SpendLogger()
