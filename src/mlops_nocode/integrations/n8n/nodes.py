"""n8n workflow building blocks: nodes, connections, and values made safe for n8n's expressions.

A node parameter that starts with `=` is an n8n expression whose `{{ ... }}` parts are JavaScript. Every
value of ours that enters one (a pipeline name, a parameter, a target) goes in as a JavaScript literal
written by `js_literal`: JSON with `{`, `}` and `$` escaped inside strings (ASCII only, so no line
separator either), so it can neither close the `{{ }}` block nor start another one. Literal parameters
(no leading `=`) are never evaluated: the only ones we write are Code nodes' code, which starts with `//`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

GATEWAY_URL = "{{ $env.MLOPS_GATEWAY_URL }}"  # replaced by the URL itself when `mlops n8n push` knows it
NOTIFY_URL = "{{ $env.MLOPS_NOTIFY_URL }}"
CREDENTIAL_TYPE = "httpHeaderAuth"
CREDENTIAL_NAME = "MLOps gateway"
SECRET_CREDENTIAL_NAME = "MLOps notify secret"
_NS = uuid.UUID("6f1e2a5c-4b1d-4c8e-9a57-0d2f3e8b9c10")


def js_literal(value: Any) -> str:
    """`value` as a JavaScript literal that is safe inside an n8n `{{ }}` expression."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=False)
    # inside JSON, braces and `$` only occur within strings (escapes there are exact) or as structure
    out = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch in "{}$":
                out.append(f"\\u{ord(ch):04x}")
                continue
        elif ch == '"':
            in_string = True
        out.append(ch)
    # structural braces of objects: keep them apart so `}}` / `{{` never appear
    return "".join(out).replace("{", "{ ").replace("}", " }")


def node_id(workflow: str, name: str) -> str:
    """A stable node id (a UUID derived from the workflow's and the node's names)."""
    return str(uuid.uuid5(_NS, f"{workflow}\x00{name}"))


def node(
    workflow: str,
    name: str,
    type_: str,
    version: float,
    position: tuple[int, int],
    parameters: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """One node; `extra` adds node-level fields (credentials, webhookId, notes...)."""
    return {
        "id": node_id(workflow, name),
        "name": name,
        "type": type_,
        "typeVersion": version,
        "position": list(position),
        "parameters": parameters,
        **extra,
    }


def gateway_credentials() -> dict[str, Any]:
    """The node-level credentials of a gateway call (the id is filled by `mlops n8n push`)."""
    return {CREDENTIAL_TYPE: {"id": "", "name": CREDENTIAL_NAME}}


def gateway_call(
    workflow: str,
    name: str,
    position: tuple[int, int],
    method: str,
    path_expr: str,
    body_expr: str | None = None,
) -> dict[str, Any]:
    """An HTTP Request node calling our gateway: `path_expr` is the expression text after the URL."""
    params: dict[str, Any] = {
        "method": method,
        "url": f"={GATEWAY_URL}{path_expr}",
        "authentication": "genericCredentialType",
        "genericAuthType": CREDENTIAL_TYPE,
        "options": {},
    }
    if body_expr is not None:
        params |= {"sendBody": True, "specifyBody": "json", "jsonBody": body_expr}
    return node(
        workflow, name, "n8n-nodes-base.httpRequest", 4.2, position, params, credentials=gateway_credentials()
    )


def connect(workflow: dict[str, Any], source: str, target: str, output: int = 0) -> None:
    """Wire `source`'s output `output` to `target`'s first input (each pair once)."""
    outputs = workflow["connections"].setdefault(source, {"main": []})["main"]
    while len(outputs) <= output:
        outputs.append([])
    link = {"node": target, "type": "main", "index": 0}
    if link not in outputs[output]:
        outputs[output].append(link)


def workflow(name: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A workflow document as n8n's public API takes it (create refuses `active`; `settings` needed)."""
    return {"name": name, "nodes": nodes, "connections": {}, "settings": {"executionOrder": "v1"}}
