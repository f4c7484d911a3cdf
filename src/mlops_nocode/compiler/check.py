"""The compiler's checks of whole documents: before a catalogue save, and of every graph a user brought."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.compile import compile_plan
from mlops_nocode.compiler.files import shipped, uses_spec_dir
from mlops_nocode.compiler.plan import Plan
from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, SpecError


def check_doc(doc: Doc, resolver: Resolver) -> None:
    """Raise SpecError unless `doc` is valid against `resolver`: a Pipeline/MetaPipeline must compile
    (every ref resolves, types and parameters check; inputs get placeholders); a Playbook has loaded and
    ships no files (a catalogue stores documents only)."""
    if isinstance(doc, Pipeline | MetaPipeline):
        compile_plan(doc, resolver, check_only=True)
    elif doc.spec.files or uses_spec_dir(doc):
        raise SpecError(
            Problem(
                "a playbook that ships files (spec.files, ${{ spec.dir }}) cannot be saved to a catalogue: "
                "a catalogue stores one YAML document per version, not the files beside it",
                f"{doc.ref} > spec.files" if doc.spec.files else f"{doc.ref} > spec.command",
                "install its code as a Python package and name it in python.entrypoint (the installed "
                "version is part of the cache key), or run the playbook from its spec file",
            )
        )


def validate_graphs(docs: Sequence[Doc], root: Doc, resolver: Resolver, params: dict[str, Any]) -> list[Plan]:
    """Check every Pipeline/MetaPipeline of `docs` (and `root`, with `params`); raise on any problem.

    Reusable pipelines that need inputs are checked with placeholders for them.
    """
    plans: list[Plan] = []
    problems: list[Problem] = []
    for doc in docs:  # the files a playbook ships, even when no pipeline of these documents uses it
        if isinstance(doc, Playbook):
            problems.extend(shipped(doc, str(doc.ref))[2])
    graphs = [d for d in docs if isinstance(d, Pipeline | MetaPipeline)]
    if isinstance(root, Pipeline | MetaPipeline) and root not in graphs:
        graphs.append(root)
    for doc in graphs:
        try:
            values = params if doc is root else None
            plans.append(compile_plan(doc, resolver, values, check_only=True))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return plans
