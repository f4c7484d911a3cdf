"""JSON Schema export of the spec, for editors (VSCode YAML extension) and the API."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mlops_nocode.spec.models import Document


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document."""
    schema = TypeAdapter(Document).json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mlops-nocode.dev/schema/v1/spec.json"
    schema["title"] = "MLOps No-Code spec (mlops-nocode/v1)"
    return schema
