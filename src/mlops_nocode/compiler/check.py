"""The compiler's checks of whole documents: before a catalogue save, and of every graph a user brought."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.compiler.compile import compile_plan
from mlops_nocode.compiler.files import shipped, uses_spec_dir
from mlops_nocode.compiler.lint import check_playbook
from mlops_nocode.compiler.plan import Plan
from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, SpecError

Placement = Callable[[Plan], list[Problem]]
"""Why a compiled plan cannot be placed on its targets (providers.placement.placement_problems)."""


def check_doc(doc: Doc, resolver: Resolver) -> None:
    """Raise SpecError unless `doc` is valid against `resolver`: a Pipeline/MetaPipeline must compile
    (every ref resolves, types and parameters check; inputs get placeholders, required parameters are
    taken as given at launch); a Playbook's command expressions must be valid, and it ships no files (a
    catalogue stores documents only)."""
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
    else:
        errors, _ = check_playbook(doc)
        if errors:
            raise SpecError(errors)


def validate_graphs(
    docs: Sequence[Doc],
    root: Doc,
    resolver: Resolver,
    params: dict[str, Any],
    placement: Placement | None = None,
) -> list[Plan]:
    """Check every document of `docs` (and `root`, with `params`); raise on any problem.

    Reusable pipelines that need inputs are checked with placeholders for them, and required parameters
    no value gives are taken as given at launch. With `placement`, every pipeline that can run on its own
    must also fit its declared (or the default) target, as `mlops run` would require. The plans carry
    the warnings of the playbooks they use; `warnings_of` adds those of playbooks used by none.
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
            plan = compile_plan(doc, resolver, values, check_only=True)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        plans.append(plan)
        if placement is not None and not any(not p.optional for p in doc.spec.inputs.values()):
            problems.extend(placement(plan))
    for pb in docs:
        if isinstance(pb, Playbook):
            problems.extend(check_playbook(pb)[0])
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return plans


def warnings_of(docs: Sequence[Doc], plans: Sequence[Plan]) -> list[Problem]:
    """Every warning of `plans`, and of the playbooks among `docs`, once each."""
    found = [w for p in plans for w in p.warnings]
    found += [w for d in docs if isinstance(d, Playbook) for w in check_playbook(d)[1]]
    return list(dict.fromkeys(found))
