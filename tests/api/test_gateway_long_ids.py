"""Pipelines nested deep enough that their namespaced step ids are longer than any fixed column: the run
succeeds through a live gateway on both databases, and its events keep the full ids."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import sleeper, wait_status

LEVELS = 8
SEGMENT = "s" * 55  # a DNS-1123 label: 8 levels make ids of about 450 characters


def _nested() -> tuple[list[dict[str, Any]], str]:
    """A chain of pipelines, each using the one below through a step named SEGMENT-<level>."""
    docs = sleeper("deep", [("leaf", 0.0)])
    inner = "deep"
    step_id = "leaf"
    for level in range(LEVELS):
        sid = f"{SEGMENT}-{level}"
        name = f"deep-{level}"
        docs.append(
            {
                "apiVersion": "mlops-nocode/v1",
                "kind": "Pipeline",
                "metadata": {"name": name, "version": "1.0.0"},
                "spec": {"steps": [{"id": sid, "uses": f"pipeline/{inner}"}]},
            }
        )
        inner, step_id = name, f"{sid}/{step_id}"
    return docs, step_id


def test_a_run_with_step_ids_longer_than_300_characters_keeps_them(admin: httpx.Client) -> None:
    docs, step_id = _nested()
    assert len(step_id) > 300
    r = admin.post("/api/v1/runs", json={"pipeline": docs})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert wait_status(admin, run_id) == "succeeded", admin.get(f"/api/v1/runs/{run_id}").text
    events = admin.get(f"/api/v1/runs/{run_id}/events").json()
    items = events["events"] if isinstance(events, dict) else events
    assert step_id in {e.get("step") for e in items}
