"""Realistic example values for the OpenAPI schema (shown in /docs and used by schema fuzzers).

Model examples are attached in api.schemas; routes that answer untyped JSON attach theirs with
`json_example`. Every example must validate against its schema (the Schemathesis test sends request
examples to the live gateway and checks the answers).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

RUN_ID = "20250101-120000-ab12cd"
KEY_ID = "3f9c2a7d41b0e865"
T0 = 1735732800.0

INLINE_PIPELINE: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Pipeline",
    "metadata": {"name": "iris-quick", "version": "1.0.0"},
    "spec": {
        "steps": [
            {"id": "load", "uses": "playbook/sklearn-dataset@1.0.0", "with": {"name": "iris"}},
        ]
    },
}

RUN: dict[str, Any] = {
    "id": RUN_ID,
    "pipeline": "pipeline/iris-classifier@1.0.0",
    "status": "succeeded",
    "details": None,
    "parameters": {"estimator": "random_forest"},
    "target": {"provider": "local", "options": {}},
    "steps": ["load", "classify/split", "classify/train", "classify/evaluate", "export"],
    "outputs": {"metrics": {"accuracy": 0.9211, "f1_macro": 0.9206}},
    "created_at": T0,
    "started_at": T0 + 0.4,
    "finished_at": T0 + 4.1,
    "worker_id": "gw-host-4242-0",
    "heartbeat_at": T0 + 4.0,
    "attempts": 1,
    "cancel_requested": False,
    "retry_of": None,
}

EVENT: dict[str, Any] = {
    "seq": 7,
    "type": "step.finished",
    "step": "classify/train",
    "ts": T0 + 2.5,
    "data": {"duration": 1.42, "cached": False, "metrics": {}},
}

PROBLEM: dict[str, Any] = {
    "what": "unknown parameter 'n_estimator'",
    "where": "parameters.n_estimator",
    "fix": "use one of estimator, n_estimators, seed",
}

FIELD_ERROR: dict[str, Any] = {
    "loc": ["body", "target", "provider"],
    "msg": "Field required",
    "type": "missing",
}

SSE = (
    f'id: 6\nevent: log\ndata: {{"seq": 6, "type": "log", "step": "classify/train", '
    f'"ts": {T0 + 2.1}, "data": {{"line": "fitting random_forest"}}}}\n\n'
    'event: end\ndata: {"status": "succeeded", "details": null}\n\n'
)

PLAYBOOK_YAML = """apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: example-echo, version: 1.0.0, description: Write a greeting}
spec:
  runtime: command
  command: {argv: [sh, -c, "echo hello > out.txt"], outputs: {out: out.txt}}
  outputs: {out: {type: text}}
"""

CATALOGUE_ENTRY: dict[str, Any] = {
    "ref": "pipeline/iris-classifier@1.0.0",
    "repo": "builtin",
    "kind": "pipeline",
    "name": "iris-classifier",
    "latest": "1.0.0",
    "versions": ["1.0.0"],
    "description": "Train and evaluate an iris species classifier",
    "labels": {"domain": "tabular"},
}

USED_BY: dict[str, Any] = {
    "by": "metapipeline/ml-portfolio@1.0.0",
    "repo": "builtin",
    "uses": "pipeline/iris-classifier@^1",
    "resolves_to": "1.0.0",
}

CHANGE: dict[str, Any] = {
    "commit": "9b2e4c1d0a7f3e5b8c6d2a1f0e9d8c7b6a5f4e3d",
    "version": "1.0.0",
    "author": "Ada <ada@example.org>",
    "date": "2025-01-01T12:00:00+00:00",
    "message": "iris-classifier 1.0.0",
    "repo": "builtin",
}

CATALOGUE_SHOW: dict[str, Any] = {
    "ref": "pipeline/iris-classifier@1.0.0",
    "repo": "builtin",
    "version": "1.0.0",
    "versions": ["1.0.0"],
    "text": "apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata: {name: iris-classifier}\n",
    "used_by": [USED_BY],
}

DIFF: dict[str, Any] = {
    "ref": "pipeline/iris-classifier",
    "from": "1.0.0",
    "to": "1.1.0",
    "diff": "--- 1.0.0\n+++ 1.1.0\n@@ -1 +1 @@\n-metadata: {name: iris-classifier, version: 1.0.0}\n"
    "+metadata: {name: iris-classifier, version: 1.1.0}\n",
}

SAVED: dict[str, Any] = {
    "status": "saved",
    "saved": [
        {
            "ref": "playbook/example-echo@1.0.0",
            "repo": "local",
            "commit": "4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
            "changed": True,
        }
    ],
}

DELETED: dict[str, Any] = {"status": "deleted", "commit": "4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c"}

PLAN: dict[str, Any] = {
    "format": "mlops-nocode/plan/v1",
    "root": "pipeline/iris-quick@1.0.0",
    "parameters": {},
    "steps": [
        {
            "id": "load",
            "playbook": "playbook/sklearn-dataset@1.0.0",
            "digest": "sha256:5f1c0e",
            "runtime": "python",
            "entrypoint": "mlops_nocode.library.data:load_dataset",
            "command": None,
            "params": {"name": "iris"},
            "inputs": {},
            "outputs": {"dataset": "dataset"},
            "needs": [],
            "resources": {"cpu": 1, "memory": "1Gi", "gpu": 0},
            "retries": 0,
            "timeout": None,
            "cache": True,
            "secrets": [],
            "target": {"provider": "auto", "options": {"max_price_per_hour": 0.5}},
            "source": "pipeline/iris-quick@1.0.0",
            "placement": {
                "provider": "local",
                "deployment": "local",
                "offer": {
                    "provider": "local",
                    "id": "this-machine",
                    "vcpus": 8.0,
                    "memory_gib": 31.2,
                    "gpu_type": "",
                    "gpu_count": 0,
                    "gpu_memory_gib": 0.0,
                    "price_per_hour": 0.0,
                    "currency": "USD",
                    "region": "",
                    "extra": {},
                },
                "price_per_hour": 0.0,
                "why": "cheapest of 4 fitting (of 12 offer(s) from local, exoscale, vastai, runpod) "
                "for 1 vCPU, 1 GiB, ≤ $0.5/h: local this-machine (8 vCPU, 31.2 GiB) at $0/h; "
                "this machine, nothing is rented",
                "runner_up": {
                    "provider": "exoscale",
                    "offer": "standard.small",
                    "region": "ch-gva-2",
                    "price_per_hour": 0.0223,
                    "why": "$0.0223/h more: exoscale standard.small (2 vCPU, 2 GiB) at $0.0223/h in ch-gva-2",
                },
            },
        }
    ],
    "outputs": {},
}

KEY: dict[str, Any] = {"id": KEY_ID, "name": "ci", "scopes": ["write"], "created_at": T0, "revoked_at": None}

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIzZjljMmE3ZDQxYjBlODY1In0.c2lnbmF0dXJl"

ARTIFACT: dict[str, Any] = {
    "name": "metrics",
    "type": "metrics",
    "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "step": "classify/evaluate",
    "output": "metrics",
    "available": True,
    "kind": "file",
    "filename": "metrics.json",
    "size": 64,
    "withheld": False,
}

WEBHOOK: dict[str, Any] = {
    "id": "a1b2c3d4e5f60718",
    "type": "webhook",
    "url": "https://example.org/hooks/mlops",
    "to": [],
    "events": ["run.failed"],
    "created_at": T0,
}
SLACK_TARGET: dict[str, Any] = {
    "type": "slack",
    "url": "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    "events": ["run.failed"],
}
EMAIL_TARGET: dict[str, Any] = {"type": "email", "to": ["ml-team@example.org"], "events": ["run.failed"]}
N8N_TARGET: dict[str, Any] = {
    "type": "webhook",
    "url": "https://n8n.example.org/webhook-waiting/1234?signature=abc",
}

SESSION: dict[str, Any] = {
    "id": "5e2b9c01d4a7f386",
    "key_id": KEY_ID,
    "scopes": ["read", "write"],
    "created_at": T0,
    "last_seen_at": T0 + 120,
    "expires_at": T0 + 8 * 3600,
    "idle_expires_at": T0 + 120 + 3600,
    "revoked_at": None,
}

OFFER: dict[str, Any] = {
    "provider": "runpod",
    "id": "NVIDIA A100 80GB PCIe",
    "vcpus": 8.0,
    "memory_gib": 117.0,
    "gpu_type": "A100-80GB",
    "gpu_count": 1,
    "gpu_memory_gib": 80.0,
    "price_per_hour": 1.19,
    "currency": "USD",
    "region": "EU-RO-1",
    "extra": {},
}
TARGET: dict[str, Any] = {
    "provider": "runpod",
    "installed": True,
    "available": False,
    "ready": False,
    "reason": None,
    "credentials": False,
    "missing": ["RUNPOD_API_KEY"],
    "terraform": True,
    "tools": {"terraform": True},
    "notes": [],
    "features": {
        "runtimes": ["command", "python"],
        "gpus": True,
        "provisions": True,
        "iac": "terraform",
        "unsupported": {},
    },
    "sheet": {
        "date": "2026-11-30",
        "source": "https://www.runpod.io/pricing",
        "refreshed": False,
        "currency": "USD",
        "error": None,
    },
    "offers": [OFFER],
}
TARGETS: list[dict[str, Any]] = [
    TARGET,
    {
        "provider": "vastai",
        "installed": False,
        "available": False,
        "ready": False,
        "reason": "its module is not part of this version",
        "offers": [],
    },
]


MODELS: dict[str, list[Any]] = {
    "TargetOut": [TARGET],
    "OfferOut": [OFFER],
    "SheetOut": [TARGET["sheet"]],
    "TargetIn": [{"provider": "local", "options": {}}],
    "DeployResponse": [
        {
            "pipeline_id": RUN_ID,
            "status": "queued",
            "message": "pipeline/iris-classifier@1.0.0 queued (5 steps)",
        }
    ],
    "StatusResponse": [
        {
            "pipeline_id": RUN_ID,
            "status": "failed",
            "details": "step classify/train failed: exit code 3",
            "timestamp": "2025-01-01T12:00:04+00:00",
        }
    ],
    "HealthResponse": [{"status": "ok", "timestamp": "2025-01-01T12:00:00+00:00"}],
    "Run": [RUN],
    "RunPage": [{"items": [RUN], "total": 1, "limit": 50, "offset": 0}],
    "RunEvent": [EVENT],
    "RunGraph": [
        {
            "run": RUN_ID,
            "steps": [
                {
                    "id": "load",
                    "needs": [],
                    "playbook": "playbook/sklearn-dataset@1.0.0",
                    "provider": "local",
                    "deployment": "local",
                },
                {
                    "id": "classify/split",
                    "needs": ["load"],
                    "playbook": "playbook/train-test-split@1.0.0",
                    "provider": "local",
                    "deployment": "local",
                },
            ],
        }
    ],
    "ProblemOut": [PROBLEM],
    "FieldError": [FIELD_ERROR],
    "ErrorOut": [
        {"detail": "invalid", "problems": [PROBLEM]},
        {"detail": [FIELD_ERROR]},
        {"detail": f"no run {RUN_ID}"},
    ],
    "ValidateResponse": [
        {"status": "valid", "pipeline": "pipeline/iris-classifier@1.0.0", "steps": 5, "warnings": []}
    ],
    "TokenRequest": [{"ttl_seconds": 600, "scopes": ["read"]}],
    "TokenResponse": [
        {"access_token": JWT, "token_type": "bearer", "expires_at": T0 + 600, "scopes": ["read"]}
    ],
    "WhoAmI": [{"key_id": KEY_ID, "name": "ci", "scopes": ["read", "write"], "via": "key"}],
    "KeyCreate": [{"name": "ci", "scopes": ["write"]}],
    "SessionRequest": [{"scopes": ["read", "write"]}],
    "SessionOut": [SESSION],
    "SessionCurrent": [SESSION | {"csrf_token": "Jx4q3Xw2mQk9v0aB7cD1eF5gH8iJ2kL6mN0pQ3rS4tU"}],
    "KeyOut": [KEY],
    "KeyCreated": [KEY | {"key": f"mlk_{KEY_ID}_(shown once)"}],
    "SaveRequest": [
        {"text": PLAYBOOK_YAML, "message": "add example-echo", "author": "Ada <ada@example.org>"}
    ],
    "SecretIn": [{"value": "hf_exampleTokenValue123"}],
    "SecretOut": [{"name": "HF_TOKEN", "created_at": T0, "updated_at": T0 + 60}],
    "Artifact": [ARTIFACT],
    "WebhookIn": [
        {"url": "https://example.org/hooks/mlops", "events": ["run.failed"]},
        {"type": "slack", "url": SLACK_TARGET["url"], "events": ["run.failed", "alert.firing"]},
        {"type": "email", "to": ["oncall@example.org"], "events": ["alert.firing", "alert.resolved"]},
    ],
    "NotifyTargetIn": [SLACK_TARGET, EMAIL_TARGET, N8N_TARGET],
    "RunLaunched": [
        RUN
        | {
            "status": "queued",
            "started_at": None,
            "finished_at": None,
            "worker_id": None,
            "heartbeat_at": None,
            "attempts": 0,
            "outputs": None,
            "notify_secret": "(shown once: 43 random URL-safe characters)",
        }
    ],
    "WebhookOut": [WEBHOOK],
    "WebhookCreated": [WEBHOOK | {"secret": "(shown once: 43 random URL-safe characters)"}],
    "Delivery": [
        {
            "webhook_id": WEBHOOK["id"],
            "event": "run.failed",
            "attempt": 1,
            "ok": False,
            "status_code": 503,
            "error": "HTTP 503",
            "ts": T0 + 5,
        }
    ],
}
"""Examples of each model of api.schemas, by class name."""


def json_example(example: Any, code: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route answering untyped JSON: shows `example` in the docs."""
    return {code: {"content": {"application/json": {"example": example}}}}


def config(model: str) -> ConfigDict:
    """A model's `model_config` carrying its examples (merged with its parents' settings)."""
    return ConfigDict(json_schema_extra={"examples": MODELS[model]})
