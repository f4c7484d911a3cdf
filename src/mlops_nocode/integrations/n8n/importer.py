"""An n8n workflow back into a Pipeline spec, when its nodes are the gateway calls `mlops n8n export` wrote.

Step nodes and the End node carry their spec as a first comment line (`// mlops-step {...}`,
`// mlops-pipeline {...}`); the trigger, Deploy, Wait and Run events nodes are the gateway's plumbing.
Any other node (another service, a Code node written by hand, a sticky note is fine) is refused with a
located problem: `nodes[i]` and the node's name, what it is, and what to do.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_nocode.integrations.n8n.export import (
    DEPLOY,
    END,
    GRAPH,
    PIPELINE_MARK,
    START,
    STEP_MARK,
    WAIT,
)
from mlops_nocode.spec import Problem, Ref, RefError

FIX = "keep the nodes `mlops n8n export` wrote, or rebuild this part of the workflow in a pipeline spec"
PLUMBING = {
    START: "n8n-nodes-base.webhook",
    DEPLOY: "n8n-nodes-base.httpRequest",
    WAIT: "n8n-nodes-base.wait",
    GRAPH: "n8n-nodes-base.httpRequest",
}
IGNORED = {"n8n-nodes-base.stickyNote"}


def _marked(code: str, mark: str) -> dict[str, Any] | None:
    first = code.split("\n", 1)[0]
    if not first.startswith(mark):
        return None
    try:
        doc = json.loads(first[len(mark) :])
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def import_workflow(wf: Any) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The Pipeline (or MetaPipeline) document of workflow `wf`, or None and every problem found."""
    nodes = wf.get("nodes") if isinstance(wf, dict) else None
    if not isinstance(nodes, list):
        return None, [Problem("not an n8n workflow: no nodes list", "nodes", "give a workflow JSON file")]
    problems: list[Problem] = []
    steps: list[dict[str, Any]] = []
    header: dict[str, Any] | None = None
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            problems.append(Problem("a node that is not an object", f"nodes[{i}]", FIX))
            continue
        name, kind = str(n.get("name", ""))[:80], str(n.get("type", ""))[:80]
        where = f"nodes[{i}] ({name!r})"
        if kind in IGNORED or PLUMBING.get(name) == kind:
            continue
        params = n.get("parameters")
        params = params if isinstance(params, dict) else {}
        code = params.get("jsCode") if kind == "n8n-nodes-base.code" else None
        if isinstance(code, str) and (step := _marked(code, STEP_MARK)) is not None:
            if not isinstance(step.get("id"), str) or not isinstance(step.get("uses"), str):
                problems.append(Problem("the step's header lacks its id or uses", f"{where}.jsCode", FIX))
            else:
                steps.append(step)
        elif isinstance(code, str) and (head := _marked(code, PIPELINE_MARK)) is not None:
            header = head
        elif kind == "n8n-nodes-base.code":
            problems.append(Problem("a Code node that `mlops n8n export` did not write", where, FIX))
        else:
            problems.append(
                Problem(f"a {kind or 'typeless'} node has no equivalent in a pipeline spec", where, FIX)
            )
    if header is None:
        problems.append(Problem("the workflow has no End node naming its pipeline", "nodes", FIX))
        return None, problems
    try:
        ref = Ref.parse(str(header.get("ref")))
        if ref.kind not in ("pipeline", "metapipeline") or not ref.version:
            raise RefError("not a pipeline ref with a version")
    except RefError:
        problems.append(Problem("the End node does not name a pipeline@version", f"nodes ({END!r})", FIX))
        return None, problems
    if problems:
        return None, problems
    spec: dict[str, Any] = {"parameters": header.get("parameters") or {"type": "object", "properties": {}}}
    if header.get("target"):
        spec["target"] = header["target"]
    spec["steps"] = steps
    if header.get("outputs"):
        spec["outputs"] = header["outputs"]
    doc = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline" if ref.kind == "pipeline" else "MetaPipeline",
        "metadata": {
            "name": ref.name,
            "version": ref.version,
            "description": header.get("description") or "",
        },
        "spec": spec,
    }
    return doc, []
