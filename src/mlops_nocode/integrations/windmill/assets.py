"""The blueprint's Windmill assets: the scripts of f/mlops (thin gateway clients, files in
orchestrator/windmill/scripts/), the `ml_pipeline_deployment` flow and the ML Pipeline Builder app.

The flow and the app are generated here and written to orchestrator/windmill/ (`mlops windmill assets`);
a test keeps the committed files equal to what this module generates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nocode.integrations.windmill.export import FOLDER, KEY_VAR, URL_VAR, js, static
from mlops_nocode.spec import MetaPipeline, Pipeline

FLOW_PATH = f"{FOLDER}/ml_pipeline_deployment"
APP_PATH = f"{FOLDER}/ml_pipeline_builder"
TARGETS = ["local", "k3s", "exoscale", "vastai", "runpod", "auto"]
SCRIPT_SUMMARIES = {
    "gateway_client": "Calls to the MLOps No-Code gateway (shared by the other scripts)",
    "validate": "Validate a pipeline through the gateway",
    "plan": "Plan a pipeline and show its Terraform and cost",
    "deploy": "Deploy a pipeline through the gateway",
    "wait": "Wait for a run's end",
    "wait_step": "Follow one step of a run",
    "notify": "Notify a Slack-compatible webhook of a run's end",
}


def shipped_assets() -> Path:
    """orchestrator/windmill of a checkout (editable install), else its copy inside the wheel."""
    here = Path(__file__).resolve().parents[2]
    packaged = here / "_orchestrator" / "windmill"
    return packaged if packaged.is_dir() else here.parent.parent / "orchestrator" / "windmill"


@dataclass(frozen=True)
class Script:
    """One Windmill Python script of f/mlops."""

    path: str
    summary: str
    content: str


def scripts(folder: Path) -> list[Script]:
    """The scripts in `folder`/scripts, in a fixed order (gateway_client first: the others import it)."""
    return [
        Script(f"{FOLDER}/{name}", summary, (folder / "scripts" / f"{name}.py").read_text(encoding="utf-8"))
        for name, summary in SCRIPT_SUMMARIES.items()
    ]


def _gw() -> dict[str, Any]:
    return {"gateway_url": static(URL_VAR), "gateway_key": static(KEY_VAR)}


def _launch() -> dict[str, Any]:
    return {
        "pipeline": js("flow_input.pipeline"),
        "parameters": js("flow_input.parameters"),
        "target": js("flow_input.target"),
    }


def _script(mid: str, summary: str, name: str, transforms: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": mid,
        "summary": summary,
        "value": {"type": "script", "path": f"{FOLDER}/{name}", "input_transforms": transforms},
    }


CHECK = """def main(status: str, details: str = "") -> str:
    if status != "succeeded":
        raise RuntimeError(f"the run {status}: {details}")
    return status
"""


def deployment_flow() -> dict[str, Any]:
    """The blueprint's `ml_pipeline_deployment`: validate, plan (Terraform shown), deploy, wait, notify."""
    run_id = js("results.deploy.pipeline_id")
    modules = [
        _script("validate", "validate the pipeline and its parameters", "validate", _gw() | _launch()),
        _script("plan", "plan: steps, Terraform, cost (creates nothing)", "plan", _gw() | _launch()),
        _script(
            "deploy",
            "deploy through the gateway",
            "deploy",
            _gw() | _launch() | {"keep": js("flow_input.keep")},
        ),
        _script(
            "wait",
            "wait for the run's end",
            "wait",
            _gw() | {"run_id": run_id, "fail_on_error": static(False)},
        ),
        _script(
            "notify",
            "notify the webhook of the end",
            "notify",
            {
                "webhook_url": js("flow_input.notify_url"),
                "pipeline": js(
                    'typeof flow_input.pipeline === "string" ? flow_input.pipeline '
                    ": JSON.stringify(flow_input.pipeline)"
                ),
                "run_id": run_id,
                "status": js("results.wait.status"),
                "details": js('results.wait.details || ""'),
            },
        ),
        {
            "id": "result",
            "summary": "fail the flow when the run did not succeed",
            "value": {
                "type": "rawscript",
                "language": "python3",
                "content": CHECK,
                "input_transforms": {
                    "status": js("results.wait.status"),
                    "details": js('results.wait.details || ""'),
                },
            },
        },
    ]
    return {
        "summary": "ML pipeline deployment: validate, plan, deploy, wait, notify",
        "description": "The MLOps No-Code deployment loop, each step a call to the gateway "
        "(its URL and key are the variables f/mlops/gateway_url and f/mlops/gateway_key).",
        "value": {"modules": modules},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "order": ["pipeline", "parameters", "target", "keep", "notify_url"],
            "properties": {
                "pipeline": {
                    "type": "string",
                    "description": "a ref, e.g. pipeline/iris-classifier",
                    "default": "pipeline/iris-classifier",
                },
                "parameters": {"type": "object", "description": "the pipeline's parameters", "default": {}},
                "target": {
                    "type": "string",
                    "enum": TARGETS,
                    "default": "local",
                    "description": "where it runs",
                },
                "keep": {
                    "type": "boolean",
                    "default": False,
                    "description": "keep what it serves after the run",
                },
                "notify_url": {
                    "type": "string",
                    "default": "",
                    "description": "Slack-compatible incoming webhook told of the end (optional)",
                },
            },
            "required": ["pipeline"],
        },
    }


def _cell(cid: str, x: int, y: int, w: int, h: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cid,
        "data": {"id": cid, **data},
        "3": {"x": 0, "y": y, "w": 3, "h": h, "fixed": False},
        "12": {"x": x, "y": y, "w": w, "h": h, "fixed": False},
    }


def builder_app(pipeline: Pipeline | MetaPipeline) -> dict[str, Any]:
    """The ML Pipeline Builder app: a form from `pipeline`'s parameter JSON Schema, a target picker, a
    deploy button running the deployment flow, and a status view of that flow's job."""
    ref = f"{'pipeline' if isinstance(pipeline, Pipeline) else 'metapipeline'}/{pipeline.metadata.name}"
    form = {
        "type": "schemaformcomponent",
        "componentInput": {"type": "static", "fieldType": "schema", "value": pipeline.spec.parameters},
        "configuration": {},
    }
    picker = {
        "type": "selectcomponent",
        "configuration": {
            "items": {
                "type": "static",
                "fieldType": "array",
                "value": [{"label": t, "value": t} for t in TARGETS],
            },
            "defaultValue": {"type": "static", "fieldType": "object", "value": "local"},
        },
    }
    button = {
        "type": "buttoncomponent",
        "configuration": {"label": {"type": "static", "fieldType": "text", "value": "Deploy"}},
        "componentInput": {
            "type": "runnable",
            "fieldType": "any",
            "runnable": {"type": "runnableByPath", "runType": "flow", "path": FLOW_PATH, "name": "deploy"},
            "fields": {
                "pipeline": {"type": "static", "fieldType": "text", "value": ref},
                "parameters": {
                    "type": "evalv2",
                    "fieldType": "object",
                    "expr": "params.values",
                    "connections": [{"componentId": "params", "id": "values"}],
                },
                "target": {
                    "type": "evalv2",
                    "fieldType": "text",
                    "expr": "target.result",
                    "connections": [{"componentId": "target", "id": "result"}],
                },
                "keep": {"type": "static", "fieldType": "boolean", "value": False},
                "notify_url": {"type": "static", "fieldType": "text", "value": ""},
            },
        },
    }
    status = {
        "type": "jobidflowstatuscomponent",
        "configuration": {
            "jobId": {
                "type": "evalv2",
                "fieldType": "text",
                "expr": "deploy.jobId",
                "connections": [{"componentId": "deploy", "id": "jobId"}],
            }
        },
    }
    title = {
        "type": "textcomponent",
        "componentInput": {"type": "static", "fieldType": "template", "value": f"ML Pipeline Builder: {ref}"},
        "configuration": {"style": {"type": "static", "value": "Title"}},
    }
    return {
        "summary": f"ML Pipeline Builder ({ref})",
        "value": {
            "grid": [
                _cell("title", 0, 0, 12, 1, title),
                _cell("params", 0, 1, 8, 10, form),
                _cell("target", 8, 1, 4, 1, picker),
                _cell("deploy", 8, 2, 4, 1, button),
                _cell("status", 0, 11, 12, 10, status),
            ],
            "fullscreen": False,
            "unusedInlineScripts": [],
            "hiddenInlineScripts": [],
            "theme": None,
            "norefreshbar": False,
        },
        "policy": {"execution_mode": "publisher", "triggerables": {}},
    }
