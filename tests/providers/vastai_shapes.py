"""Vast.ai request/response shapes for the tests, taken from the provider's own published material.

Sources (read 2026-11-30):
- official package `vastai` 1.9.1 (PyPI), vastai/data/offer.py (offer fields, RAM in MB),
  vastai/data/instance.py (instance fields: actual_status, intended_status, status_msg...),
  vastai/api/instances.py (show_instance returns `instances`, None when gone),
  vastai/cli/commands/instances.py ("Return value: {'success': True, 'new_contract': 7835610}");
- API reference https://docs.vast.ai/api-reference/ and its OpenAPI files in github.com/vast-ai/docs:
  api-reference/openapi/yaml/create_instance.yaml (errors: 400 invalid_args/invalid_price, 401,
  403, 404 and 410 no_such_ask with `msg`, 429 {"detail": ...}),
  auto_get_api_v0_instances_id_4ff617.yaml ({"instances": null} when not found),
  auto_delete_api_v0_instances_id_4ff617.yaml (404 {"success": false, "error": "no_such_instance"});
- https://docs.vast.ai/api/prepay-instance ({"success": false, "msg": "insufficient credit"});
- vastai/api/client.py is_search_quota_exceeded (429 {"error": "search_quota_exceeded"}).
"""

from __future__ import annotations

from typing import Any


def offer(
    offer_id: int, gpu: str = "RTX 4090", price: float = 0.41, geo: str = "Texas, US", **kw: Any
) -> dict[str, Any]:
    row = {
        "id": offer_id,
        "ask_contract_id": offer_id,
        "machine_id": 88888,
        "host_id": 55555,
        "num_gpus": 1,
        "gpu_name": gpu,
        "gpu_ram": 24576,
        "gpu_total_ram": 24576,
        "cpu_cores_effective": 16.0,
        "cpu_ram": 65536,
        "disk_space": 512.0,
        "dph_base": round(price - 0.02, 4),
        "dph_total": price,
        "inet_down": 900.0,
        "reliability2": 0.9971,
        "geolocation": geo,
        "verified": True,
        "rentable": True,
        "rented": False,
        "is_bid": False,
    }
    row.update(kw)
    return row


CREATED = {"success": True, "new_contract": 7835610}
UNAUTHORIZED = {"success": False, "error": "auth_error", "msg": "Invalid user key"}
NO_CREDIT = {"success": False, "error": "insufficient_credit", "msg": "insufficient credit"}
OFFER_GONE = {
    "success": False,
    "error": "no_such_ask",
    "msg": "error 410/3907: no_such_ask Instance type 1234567 is no longer available.",
    "ask_id": 1234567,
}
SEARCH_QUOTA = {"success": False, "error": "search_quota_exceeded", "msg": "daily search quota exceeded"}
NO_SUCH_INSTANCE = {"success": False, "error": "no_such_instance", "msg": "Instance 7835610 not found."}
DESTROYED = {"success": True}


def instance(actual: str | None, intended: str = "running", msg: str = "") -> dict[str, Any]:
    return {
        "instances": {
            "id": 7835610,
            "machine_id": 88888,
            "actual_status": actual,
            "intended_status": intended,
            "cur_state": "running" if actual == "running" else "stopped",
            "next_state": "running",
            "status_msg": msg,
            "label": "mlops-run1-train",
            "extra_env": [],
            "start_date": 1764480000.0,
            "dph_total": 0.41,
        }
    }


GONE_INSTANCE: dict[str, Any] = {"instances": None}
