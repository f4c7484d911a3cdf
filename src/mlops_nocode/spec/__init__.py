"""Spec layer: pydantic models, loading and JSON Schema export. Imports nothing else of ours."""

from mlops_nocode.spec.errors import Problem, SpecError
from mlops_nocode.spec.loader import load_file, load_text, parse_document
from mlops_nocode.spec.models import (
    ARTIFACT_TYPES,
    Document,
    Graph,
    MetaPipeline,
    Pipeline,
    Playbook,
    Port,
    Step,
    Target,
)
from mlops_nocode.spec.refs import Kind, Ref, RefError, VersionRange
from mlops_nocode.spec.values import parse_duration

__all__ = [
    "ARTIFACT_TYPES",
    "Document",
    "Graph",
    "Kind",
    "MetaPipeline",
    "Pipeline",
    "Playbook",
    "Port",
    "Problem",
    "Ref",
    "RefError",
    "SpecError",
    "Step",
    "Target",
    "VersionRange",
    "load_file",
    "load_text",
    "parse_document",
    "parse_duration",
]
