"""What a launch request names (a ref, or inline spec documents) compiled into a placed Plan.

The same steps as `mlops run`: load, join the configured catalogues, validate every graph, compile with
the parameters and target, place every step (runs.flow: providers.placement). Every failure is a SpecError
of located problems.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlops_nocode.catalogue import Doc
from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.compiler.check import validate_graphs, warnings_of
from mlops_nocode.runs.flow import placed_plan
from mlops_nocode.spec import MetaPipeline, Pipeline, Problem, Ref, RefError, SpecError, parse_document

Inline = str | dict[str, Any] | list[dict[str, Any]]


def inline_docs(pipeline: dict[str, Any] | list[dict[str, Any]], where: str = "pipeline") -> list[Doc]:
    """Spec documents given as one mapping or a list of mappings (playbooks and pipelines together)."""
    items = pipeline if isinstance(pipeline, list) else [pipeline]
    if not items:
        raise SpecError(Problem("no spec document given", where, "give a ref or at least one document"))
    docs: list[Doc] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        try:
            docs.append(parse_document(item, f"{where}[{i}]" if isinstance(pipeline, list) else where))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    return docs


def root_of(pipeline: Inline, docs: list[Doc], where: str = "pipeline") -> Ref | Doc:
    """The ref, or the last Pipeline/MetaPipeline of the documents."""
    if isinstance(pipeline, str):
        try:
            return Ref.parse(pipeline)
        except RefError as e:
            raise SpecError(
                Problem(str(e), where, "give a ref such as pipeline/iris-classifier, or an inline spec")
            ) from None
    graphs = [d for d in docs if isinstance(d, Pipeline | MetaPipeline)]
    if not graphs:
        raise SpecError(
            Problem("no Pipeline or MetaPipeline among the documents", where, "add a Pipeline that uses them")
        )
    return graphs[-1]


def prepare(
    pipeline: Inline,
    parameters: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    *,
    check_only: bool = False,
) -> Plan:
    """Compile a launch request into a Plan ready to run (or, with `check_only`, only validate it)."""
    docs = [] if isinstance(pipeline, str) else inline_docs(pipeline)
    catalogue = configured_catalogue(docs)
    root = root_of(pipeline, docs)
    root_doc = catalogue.resolve(root) if isinstance(root, Ref) else root
    params = dict(parameters or {})
    plans = validate_graphs(docs, root_doc, catalogue, params) if docs else []
    launch = None
    if target:
        launch = {"provider": target.get("provider", "local"), "options": dict(target.get("options") or {})}
    needs_inputs = check_only and any(not p.optional for p in root_doc.spec.inputs.values())
    if needs_inputs:  # a graph that needs inputs is only checked, never placed
        plan = compile_plan(root_doc, catalogue, params, launch, check_only=check_only)
    else:
        plan = placed_plan(root_doc, catalogue, params, launch, check_only=check_only, launch_where="target")
    if check_only:
        plan = replace(plan, warnings=tuple(warnings_of(docs, [plan, *plans])))
    return plan
