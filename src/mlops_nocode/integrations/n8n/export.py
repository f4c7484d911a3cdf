"""A Pipeline rendered as an n8n workflow that runs it through our gateway, its graph mirroring the DAG.

Start (Webhook, POST `mlops-run-NAME`, body `{"parameters": {...}, "target": ...}`) -> Deploy (our
`POST /pipelines/deploy`, with a `notify` target of type webhook = this execution's resume URL) -> Wait
(resumed by our signed completion webhook: no polling) -> Run events (`GET /api/v1/runs/{id}/events`,
from the gateway itself: the notification only wakes the workflow) ->
one Code node per step, wired as the DAG, each returning its step's status and outputs and failing the
execution when its step failed -> End (the run's outputs; fails when the run did not succeed).

Each step node's code starts with `// mlops-step <JSON>` (its `uses`, `with`, `inputs`, `depends_on`,
options) and the End node's with `// mlops-pipeline <JSON>` (ref, parameter schema, target, outputs):
what `mlops n8n import` reads back. Gateway URL and key never appear: the URL is `$env.MLOPS_GATEWAY_URL`
(or the URL itself, written by `mlops n8n push`), the key an n8n credential.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_nocode.integrations.n8n.nodes import (
    connect,
    gateway_call,
    js_literal,
    node,
    workflow,
)
from mlops_nocode.integrations.windmill.graph import levels, needs
from mlops_nocode.spec import MetaPipeline, Pipeline, Problem, SpecError
from mlops_nocode.spec.models import Step

STEP_MARK = "// mlops-step "
PIPELINE_MARK = "// mlops-pipeline "
START, DEPLOY, WAIT, GRAPH, END = "Start", "Deploy", "Wait for the run's end", "Run events", "End"
ENDED = {"step.finished": "succeeded", "step.failed": "failed", "step.skipped": "skipped"}
RUN_EVENTS = ["run.succeeded", "run.failed", "run.cancelled"]


def marker(mark: str, doc: dict[str, Any]) -> str:
    """One comment line holding `doc` (ASCII JSON: no line break can end the comment early)."""
    return mark + json.dumps(doc, ensure_ascii=True)


def step_name(step_id: str) -> str:
    return f"step {step_id}"


def step_code(step: Step) -> str:
    doc = step.model_dump(
        mode="json",
        by_alias=True,
        include={"id", "uses", "with_", "inputs", "depends_on", "target", "retries", "timeout"},
        exclude_none=True,
        exclude_defaults=True,
    )
    doc["id"], doc["uses"] = step.id, step.uses
    return "\n".join(
        [
            marker(STEP_MARK, doc),
            f"const id = {js_literal(step.id)};",
            f"const ended = {js_literal(ENDED)};",
            f"const events = $({js_literal(GRAPH)}).all().map(i => i.json);",
            "const mine = events.filter(e => ended[e.type] && (e.step === id || "
            "e.step.startsWith(id + '/')));",
            "const steps = mine.map(e => ({ id: e.step, status: ended[e.type], "
            "outputs: e.data?.outputs ?? { } }));",
            "const failed = steps.filter(s => s.status === 'failed');",
            "if (!steps.length) throw new Error(`step ${id} did not run`);",
            "if (failed.length) throw new Error(`step ${id} failed: ${failed.map(s => s.id)}`);",
            "const own = steps.find(s => s.id === id);",
            "return [{ json: { step: id, status: 'succeeded', outputs: own ? own.outputs : { }, steps } }];",
        ]
    )


def end_code(header: dict[str, Any]) -> str:
    return "\n".join(
        [
            marker(PIPELINE_MARK, header),
            f"const end = $({js_literal(WAIT)}).first().json.body;",
            "if (end.event !== 'run.succeeded') throw new Error(`run ${end.run.id}: ${end.event}`);",
            "return [{ json: { run: end.run.id, status: end.run.status, outputs: end.run.outputs ?? {} } }];",
        ]
    )


def deploy_body(ref: str, defaults: dict[str, Any], target: Any) -> str:
    """The Deploy node's JSON body expression: the start's parameters over the pipeline's defaults."""
    return (
        "={{ JSON.stringify({ "
        f"pipeline: {js_literal(ref)}, "
        f"parameters: Object.assign({js_literal(defaults)}, $json.body?.parameters ?? {{ }}), "
        f"target: $json.body?.target ?? {js_literal(target)}, "
        f'notify: [{{ type: "webhook", url: $execution.resumeUrl, events: {js_literal(RUN_EVENTS)} }}] '
        "}) }}"
    )


def wait_node(wf: str, position: tuple[int, int]) -> dict[str, Any]:
    """Wait resumed by a POST to `$execution.resumeUrl` (our signed notification), at most 6 hours."""
    return node(
        wf,
        WAIT,
        "n8n-nodes-base.wait",
        1.1,
        position,
        {
            "resume": "webhook",
            "httpMethod": "POST",
            "limitWaitTime": True,
            "limitType": "afterTimeInterval",
            "resumeAmount": 6,
            "resumeUnit": "hours",
            "options": {"rawBody": True},
        },
        webhookId=wf_uuid(wf, WAIT),
    )


def wf_uuid(wf: str, name: str) -> str:
    from mlops_nocode.integrations.n8n.nodes import node_id

    return node_id(wf + "#webhook", name)


def webhook_name(pipeline_name: str) -> str:
    return f"mlops-run-{pipeline_name}"


def export_workflow(
    pipeline: Pipeline | MetaPipeline, target: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The n8n workflow of `pipeline` (names are DNS labels and step ids unique: nothing to refuse but
    pipelines that take inputs)."""
    if pipeline.spec.inputs:
        raise SpecError(
            Problem(
                f"{pipeline.metadata.name} takes inputs ({', '.join(pipeline.spec.inputs)}): it runs only "
                "inside another pipeline, which gives them",
                "spec.inputs",
                "export the pipeline that uses it",
            )
        )
    kind = "pipeline" if isinstance(pipeline, Pipeline) else "metapipeline"
    ref = f"{kind}/{pipeline.metadata.name}@{pipeline.metadata.version}"
    name = f"MLOps: {ref}"
    if target is None and pipeline.spec.target is not None:
        target = pipeline.spec.target.model_dump(mode="json", exclude_none=True)
    props = pipeline.spec.parameters.get("properties") or {}
    defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    nodes = [
        node(
            name,
            START,
            "n8n-nodes-base.webhook",
            2,
            (0, 0),
            {"httpMethod": "POST", "path": webhook_name(pipeline.metadata.name), "options": {}},
            webhookId=wf_uuid(name, START),
        ),
        gateway_call(name, DEPLOY, (220, 0), "POST", "/pipelines/deploy", deploy_body(ref, defaults, target)),
        wait_node(name, (440, 0)),
        gateway_call(
            name,
            GRAPH,
            (660, 0),
            "GET",
            f"/api/v1/runs/{{{{ $({js_literal(DEPLOY)}).first().json.pipeline_id }}}}/events?limit=10000",
        ),
    ]
    wf = workflow(name, nodes)
    for a, b in ((START, DEPLOY), (DEPLOY, WAIT), (WAIT, GRAPH)):
        connect(wf, a, b)
    steps = pipeline.spec.steps
    ids = {s.id for s in steps}
    needed: set[str] = set()
    for depth, group in enumerate(levels(steps)):
        for row, step in enumerate(group):
            wf["nodes"].append(
                node(
                    name,
                    step_name(step.id),
                    "n8n-nodes-base.code",
                    2,
                    (880 + 220 * depth, 200 * row),
                    {"jsCode": step_code(step)},
                )
            )
            parents = [p for p in needs(step) if p in ids]
            needed.update(parents)
            for source in [step_name(p) for p in parents] or [GRAPH]:
                connect(wf, source, step_name(step.id))
    header = {
        "ref": ref,
        "description": pipeline.metadata.description,
        "parameters": pipeline.spec.parameters,
        "target": target,
        "outputs": pipeline.spec.outputs,
    }
    end_x = 880 + 220 * len(levels(steps))
    wf["nodes"].append(node(name, END, "n8n-nodes-base.code", 2, (end_x, 0), {"jsCode": end_code(header)}))
    for step in steps:
        if step.id not in needed:
            connect(wf, step_name(step.id), END)
    if not steps:
        connect(wf, GRAPH, END)
    return wf
