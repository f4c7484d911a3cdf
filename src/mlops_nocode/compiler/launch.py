"""What a launch brings to the compiler: the graph to compile (a document or a ref) and the values it
gives (parameters and target options, data only: never expressions)."""

from __future__ import annotations

from typing import Any

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, Ref, RefError, SpecError
from mlops_nocode.spec.limits import data_problems

Graph = Pipeline | MetaPipeline


def root_graph(root: Doc | Ref | str, resolver: Resolver) -> Graph:
    """The Pipeline or MetaPipeline to compile: `root` itself, or what its ref resolves to."""
    if isinstance(root, str):
        text = root
        try:
            root = Ref.parse(text)
        except RefError as e:
            raise SpecError(
                Problem(str(e), text[:300], "give a ref such as pipeline/iris-classifier")
            ) from None
    doc = resolver.resolve(root) if isinstance(root, Ref) else root
    if isinstance(doc, Playbook):
        raise SpecError(
            Problem(
                f"{doc.ref} is a Playbook: only a Pipeline or MetaPipeline can be planned or run",
                str(doc.ref),
                "wrap it in a Pipeline with one step that uses it",
            )
        )
    return doc


def launch_problems(params: dict[str, Any], launch: dict[str, Any] | None, label: str) -> list[Problem]:
    """What is wrong with the values a launch brings (never expressions: they are data)."""
    problems = data_problems(params, f"{label} > parameters")
    if launch is not None:
        if not isinstance(launch.get("provider"), str) or not isinstance(launch.get("options", {}), dict):
            problems.append(Problem("invalid target", "target", 'give {"provider": NAME, "options": {...}}'))
        else:
            problems += data_problems(launch.get("options") or {}, "target.options")
    stack: list[Any] = [params]
    while stack and not problems:
        v = stack.pop()
        if isinstance(v, str) and "${{" in v:
            problems.append(
                Problem(
                    "a parameter value holds '${{': launch values are data, not expressions",
                    f"{label} > parameters",
                    "remove the '${{' from the value",
                )
            )
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return problems
