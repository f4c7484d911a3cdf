"""JSON Schema export of the spec, for editors (VSCode YAML extension) and the API.

Pydantic's schema only knows types; the patterns the models check in validators are added here so that
an editor rejects what `mlops validate` rejects (runtime messages stay those of the validators).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mlops_nocode.spec.limits import playbook_code_limit
from mlops_nocode.spec.models import Document
from mlops_nocode.spec.refs import NAME_PATTERN
from mlops_nocode.spec.sections import SECTIONS
from mlops_nocode.spec.values import (
    DURATION_RE,
    ENTRYPOINT_RE,
    ENV_NAME_RE,
    FUNCTION_RE,
    MAX_TIMEOUT,
    MEMORY_RE,
    PORT_NAME_RE,
    RELATIVE_PATH_RE,
)

NAME = f"^{NAME_PATTERN}$"
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
USES = rf"^(playbook|pipeline|metapipeline)/{NAME_PATTERN}(@\S+)?$"
CONNECTION = rf"^(inputs|{NAME_PATTERN})\.[A-Za-z_][A-Za-z0-9_-]*$"
ENTRYPOINT = ENTRYPOINT_RE.pattern
MEMORY = MEMORY_RE.pattern
DURATION = DURATION_RE.pattern
POSITIVE_DURATION = r"^(?!0*(\.0*)?(ms|s|m|h)?$)" + DURATION.removeprefix("^")
EXTENSION = "^x-"
"""Top-level keys starting with `x-` are ignored (a place for YAML anchors, as in docker-compose)."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document."""
    schema = TypeAdapter(Document).json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlops-nocode.dev/schema/v1/spec.json"
    schema["title"] = "MLOps No-Code spec (mlops-nocode/v1)"
    _constrain(schema["$defs"])
    return schema


def python_runtime_rule() -> dict[str, Any]:
    """`python`: with `code`, `entrypoint` names a function of it (bounded size); without, an importable
    `module:function` is required."""
    code = {"type": "string", "maxLength": playbook_code_limit()}  # characters; the model counts bytes
    return {
        "if": {"required": ["code"], "properties": {"code": {"type": "string"}}},
        "then": {"properties": {"code": code, "entrypoint": {"pattern": FUNCTION_RE.pattern}}},
        "else": {"required": ["entrypoint"], "properties": {"entrypoint": {"pattern": ENTRYPOINT}}},
    }


def _string(prop: dict[str, Any]) -> dict[str, Any]:
    """The string branch of a property (itself, or its `anyOf` member of type string)."""
    if prop.get("type") == "string":
        return prop
    return next(b for b in prop["anyOf"] if b.get("type") == "string")


def _number(prop: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in prop["anyOf"] if b.get("type") == "number")


def _constrain(defs: dict[str, Any]) -> None:
    props = {name: d["properties"] for name, d in defs.items()}
    props["Metadata"]["name"]["pattern"] = NAME
    props["Metadata"]["version"]["pattern"] = SEMVER
    defs["PythonRuntime"]["allOf"] = [python_runtime_rule()]
    props["Resources"]["memory"]["pattern"] = MEMORY
    props["PlaybookSpec"]["files"]["items"]["pattern"] = RELATIVE_PATH_RE.pattern
    step = props["Step"]
    step["id"]["pattern"] = NAME
    step["uses"]["pattern"] = USES
    step["inputs"]["additionalProperties"]["pattern"] = CONNECTION
    step["depends_on"]["items"]["pattern"] = NAME
    for timeout in (step["timeout"], props["PlaybookSpec"]["timeout"]):
        _string(timeout)["pattern"] = POSITIVE_DURATION
        _number(timeout).update({"exclusiveMinimum": 0, "maximum": MAX_TIMEOUT})
    port_names = {"pattern": PORT_NAME_RE.pattern}
    for spec in ("PlaybookSpec", "PipelineSpec"):
        props[spec]["inputs"]["propertyNames"] = port_names
        props[spec]["outputs"]["propertyNames"] = port_names
    props["PipelineSpec"]["outputs"]["additionalProperties"]["pattern"] = CONNECTION
    props["PlaybookSpec"]["secrets"]["items"]["pattern"] = PORT_NAME_RE.pattern
    props["CommandRuntime"]["env"]["propertyNames"] = {"pattern": ENV_NAME_RE.pattern}
    props["Resources"]["memory"]["maxLength"] = 24
    defs["PlaybookSpec"]["allOf"] = [
        {
            "if": {"properties": {"runtime": {"const": runtime}}, "required": ["runtime"]},
            "then": {"required": [runtime], "properties": {runtime: {"$ref": f"#/$defs/{section}"}}},
        }
        for runtime, section in (
            ("python", "PythonRuntime"),
            ("command", "CommandRuntime"),
            *((name, model.__name__) for name, model in SECTIONS.items()),
        )
    ]
    for kind in ("Playbook", "Pipeline", "MetaPipeline"):
        defs[kind]["patternProperties"] = {EXTENSION: {}}
