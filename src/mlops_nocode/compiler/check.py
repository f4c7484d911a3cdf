"""The compiler's check of a document about to be saved to a catalogue (injected into catalogue saves)."""

from __future__ import annotations

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.compile import compile_plan
from mlops_nocode.spec import MetaPipeline, Pipeline


def check_doc(doc: Doc, resolver: Resolver) -> None:
    """Raise SpecError unless `doc` is valid against `resolver`: a Pipeline/MetaPipeline must compile
    (every ref resolves, types and parameters check; inputs get placeholders); a Playbook has loaded."""
    if isinstance(doc, Pipeline | MetaPipeline):
        compile_plan(doc, resolver, check_only=True)
