"""The workflows shipped in deploy/n8n/: deploy and wait for the end, retrain when a metric drops, nightly
batch prediction. `python -m mlops_nocode.integrations.n8n.shipped` rewrites those files; a test checks
that the files are what this module builds.

A workflow waits for our signed notification, never by polling: its Deploy call carries a `notify`
target of type webhook whose URL is `$execution.resumeUrl` (the Wait node resumes when it is called), and
the Verify node recomputes `X-MLOPS-Signature` (HMAC-SHA256 of the raw body with the run's
`notify_secret`, from the deploy answer) before the workflow trusts the body. The Code node needs the
`crypto` built-in (`NODE_FUNCTION_ALLOW_BUILTIN=crypto`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_nocode.integrations.n8n.export import RUN_EVENTS, wait_node, wf_uuid
from mlops_nocode.integrations.n8n.nodes import NOTIFY_URL, connect, gateway_call, js_literal, node, workflow

DEPLOY_WAIT = "MLOps: deploy a pipeline and wait for its end"
RETRAIN = "MLOps: retrain when a metric drops"
NIGHTLY = "MLOps: nightly batch prediction"
WAIT = "Wait for the run's end"
ALERT = "MlopsModelMetricBelowMinimum"

VERIFY_JS = """const crypto = require('crypto');
const item = $input.first();
const secret = SECRET;
if (!secret) throw new Error('no secret to check the signature with');
const raw = await this.helpers.getBinaryDataBuffer(0, 'data');
const given = String(item.json.headers['x-mlops-signature'] ?? '');
const want = 'sha256=' + crypto.createHmac('sha256', secret).update(raw).digest('hex');
const ok = given.length === want.length && crypto.timingSafeEqual(Buffer.from(given), Buffer.from(want));
if (!ok) throw new Error('X-MLOPS-Signature does not match: refusing the notification');
return [{ json: JSON.parse(raw.toString('utf8')) }];"""


def verify_node(wf: str, name: str, position: tuple[int, int], secret_expr: str) -> dict[str, Any]:
    code = VERIFY_JS.replace("SECRET", secret_expr)
    return node(wf, name, "n8n-nodes-base.code", 2, position, {"jsCode": code})


def deploy_body(pipeline: str, parameters: str, target: str) -> str:
    """The deploy's JSON body expression; the three arguments are JavaScript expressions."""
    return (
        "={{ JSON.stringify({ "
        f"pipeline: {pipeline}, parameters: {parameters}, target: {target}, "
        f'notify: [{{ type: "webhook", url: $execution.resumeUrl, events: {js_literal(RUN_EVENTS)} }}] '
        "}) }}"
    )


def notify_node(wf: str, name: str, position: tuple[int, int], text: str) -> dict[str, Any]:
    """An HTTP POST of `{text, run, status}` to MLOPS_NOTIFY_URL (replaced by `push --notify-url`)."""
    body = (
        "={{ JSON.stringify({ text: "
        + js_literal(text)
        + " + ': ' + $json.run.pipeline + ' (' + $json.run.id + ')', run: $json.run.id, "
        "status: $json.run.status, details: $json.run.details }) }}"
    )
    params = {
        "method": "POST",
        "url": "=" + NOTIFY_URL,
        "sendBody": True,
        "specifyBody": "json",
        "jsonBody": body,
        "options": {},
    }
    return node(wf, name, "n8n-nodes-base.httpRequest", 4.2, position, params)


def if_node(wf: str, name: str, position: tuple[int, int], left: str, right: str) -> dict[str, Any]:
    """An If node: true (output 0) when the expression `left` equals the string `right`."""
    condition = {
        "id": wf_uuid(wf, name + "#condition"),
        "leftValue": "={{ " + left + " }}",
        "rightValue": right,
        "operator": {"type": "string", "operation": "equals"},
    }
    params = {
        "conditions": {
            "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict", "version": 2},
            "conditions": [condition],
            "combinator": "and",
        },
        "options": {},
    }
    return node(wf, name, "n8n-nodes-base.if", 2.2, position, params)


def _wait_tail(wf: dict[str, Any], start: str, x: int) -> None:
    """Deploy -> Wait -> Verify -> Succeeded? -> Notify success | Notify failure, after node `start`."""
    name = wf["name"]
    secret = "$('Deploy').first().json.notify_secret"
    wf["nodes"] += [
        wait_node(name, (x, 0)),
        verify_node(name, "Verify signature", (x + 220, 0), secret),
        if_node(name, "Succeeded?", (x + 440, 0), "$json.event", "run.succeeded"),
        notify_node(name, "Notify success", (x + 660, -100), "Run succeeded"),
        notify_node(name, "Notify failure", (x + 660, 100), "Run did not succeed"),
    ]
    for a, b in ((start, WAIT), (WAIT, "Verify signature"), ("Verify signature", "Succeeded?")):
        connect(wf, a, b)
    connect(wf, "Succeeded?", "Notify success", 0)
    connect(wf, "Succeeded?", "Notify failure", 1)


def deploy_and_wait() -> dict[str, Any]:
    """Webhook `POST /webhook/mlops-deploy` {pipeline, parameters, target} -> deploy -> wait -> notify."""
    wf = workflow(DEPLOY_WAIT, [])
    wf["nodes"] += [
        node(
            DEPLOY_WAIT,
            "Deploy request",
            "n8n-nodes-base.webhook",
            2,
            (0, 0),
            {"httpMethod": "POST", "path": "mlops-deploy", "options": {}},
            webhookId=wf_uuid(DEPLOY_WAIT, "Deploy request"),
        ),
        gateway_call(
            DEPLOY_WAIT,
            "Deploy",
            (220, 0),
            "POST",
            "/pipelines/deploy",
            deploy_body("$json.body.pipeline", "$json.body.parameters ?? { }", "$json.body.target ?? null"),
        ),
    ]
    connect(wf, "Deploy request", "Deploy")
    _wait_tail(wf, "Deploy", 440)
    return wf


def retrain() -> dict[str, Any]:
    """Our alert notification (a webhook registered for `alert.firing`, its secret in MLOPS_ALERT_SECRET)
    -> when it is MlopsModelMetricBelowMinimum, deploy its pipeline again -> wait -> notify."""
    wf = workflow(RETRAIN, [])
    wf["nodes"] += [
        node(
            RETRAIN,
            "Alert from MLOps",
            "n8n-nodes-base.webhook",
            2,
            (0, 0),
            {"httpMethod": "POST", "path": "mlops-alert", "options": {"rawBody": True}},
            webhookId=wf_uuid(RETRAIN, "Alert from MLOps"),
        ),
        verify_node(RETRAIN, "Verify alert", (220, 0), "$env.MLOPS_ALERT_SECRET"),
        if_node(
            RETRAIN,
            "Metric below minimum?",
            (440, 0),
            "$json.event === 'alert.firing' ? $json.alert.labels.alertname : ''",
            ALERT,
        ),
        gateway_call(
            RETRAIN,
            "Deploy",
            (660, 0),
            "POST",
            "/pipelines/deploy",
            deploy_body("'pipeline/' + $json.alert.labels.pipeline", "{ }", "null"),
        ),
    ]
    connect(wf, "Alert from MLOps", "Verify alert")
    connect(wf, "Verify alert", "Metric below minimum?")
    connect(wf, "Metric below minimum?", "Deploy", 0)
    _wait_tail(wf, "Deploy", 880)
    return wf


def nightly() -> dict[str, Any]:
    """Every night at 02:00 -> deploy the pipeline named in the Settings node -> wait -> notify."""
    wf = workflow(NIGHTLY, [])
    settings = (
        "// edit: the batch prediction pipeline to run every night, its parameters and target\n"
        "return [{ json: { pipeline: 'pipeline/tabular-classification', parameters: { }, "
        "target: 'local' } }];"
    )
    wf["nodes"] += [
        node(
            NIGHTLY,
            "Every night",
            "n8n-nodes-base.scheduleTrigger",
            1.2,
            (0, 0),
            {"rule": {"interval": [{"field": "cronExpression", "expression": "0 2 * * *"}]}},
        ),
        node(NIGHTLY, "Settings", "n8n-nodes-base.code", 2, (220, 0), {"jsCode": settings}),
        gateway_call(
            NIGHTLY,
            "Deploy",
            (440, 0),
            "POST",
            "/pipelines/deploy",
            deploy_body("$json.pipeline", "$json.parameters", "$json.target"),
        ),
    ]
    connect(wf, "Every night", "Settings")
    connect(wf, "Settings", "Deploy")
    _wait_tail(wf, "Deploy", 660)
    return wf


FILES = {
    "deploy-and-wait.json": deploy_and_wait,
    "retrain-on-metric-drop.json": retrain,
    "nightly-batch.json": nightly,
}


def shipped_dir() -> Path:
    """deploy/n8n of a checkout (editable install), else its copy inside the wheel."""
    here = Path(__file__).resolve().parents[2]
    packaged = here / "_deploy" / "n8n"
    return packaged if packaged.is_dir() else here.parent.parent / "deploy" / "n8n"


def render(wf: dict[str, Any]) -> str:
    return json.dumps(wf, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    folder = shipped_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for file, build in FILES.items():
        (folder / file).write_text(render(build()), encoding="utf-8")


if __name__ == "__main__":
    main()
