"""What a model may write, checked before the compiler sees it: the kind of document asked for and no
other, a valid name, `uses` only of catalogue entries (unknown ones refused with the nearest names), and
no command, container or other code-running runtime in a pipeline answer. A playbook answer is one
`runtime: python` playbook carrying its own code, with no files and no secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlops_nocode.catalogue.base import Doc, Resolver, unknown_name
from mlops_nocode.spec import Playbook, Problem, Ref, RefError, SpecError, parse_document
from mlops_nocode.spec.refs import check_name

Mode = Literal["pipeline", "playbook"]
WHERE = "answer"
SAMPLES_KEY = "x-samples"
PARAMS_KEY = "x-parameters"
_GRAPHS = ("Pipeline", "MetaPipeline")


@dataclass
class Guarded:
    """The one document the answer holds, and (playbooks) the samples it proposes for its test run."""

    doc: Doc
    data: dict[str, Any]
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


def _kind_problem(kind: Any, mode: Mode) -> Problem | None:
    if mode == "pipeline" and kind == "Playbook":
        return Problem(
            "the answer defines a playbook: a generated pipeline may use catalogue entries only (no "
            "command, container or inline-code steps of its own)",
            f"{WHERE} > kind",
            "use the catalogue's playbooks; to have code written, ask for a playbook (--playbook)",
        )
    if mode == "playbook" and kind in _GRAPHS:
        return Problem("a playbook was asked for, the answer is a " + str(kind), f"{WHERE} > kind",
                       "answer with one Playbook document")  # fmt: skip
    return None


def _one(datas: list[Any], mode: Mode) -> dict[str, Any]:
    problems = []
    for data in datas:
        kind = data.get("kind") if isinstance(data, dict) else None
        if (p := _kind_problem(kind, mode)) is not None:
            problems.append(p)
    if problems:
        raise SpecError(problems)
    if not any(isinstance(d, dict) for d in datas):
        raise SpecError(
            Problem("the answer holds no spec", WHERE, "answer with the spec in one ```yaml block")
        )
    if len(datas) != 1 or not isinstance(datas[0], dict):
        what = "Playbook" if mode == "playbook" else "Pipeline or MetaPipeline"
        raise SpecError(
            Problem(f"the answer holds {len(datas)} documents", WHERE, f"answer with exactly one {what}")
        )
    one: dict[str, Any] = datas[0]
    meta = one.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or (why := check_name(name)) is not None:
        shown = repr(name)[:80] if isinstance(name, str) else "missing"
        raise SpecError(
            Problem(
                f"metadata.name {shown} is not a valid name"
                + (" (a path is not a name)" if isinstance(name, str) and ("/" in name or ".." in name)
                   else ""),
                f"{WHERE} > metadata.name",
                why or "name it with a DNS-1123 label such as my-pipeline",
            )
        )  # fmt: skip
    return one


def _uses(doc: Doc, resolver: Resolver) -> list[Problem]:
    if isinstance(doc, Playbook):
        return []
    problems = []
    for i, step in enumerate(doc.spec.steps):
        where = f"{WHERE} > spec.steps[{i}].uses"
        try:
            ref = Ref.parse(step.uses)
        except RefError as e:
            problems.append(Problem(str(e), where, "write KIND/NAME or KIND/NAME@VERSION of the catalogue"))
            continue
        if ref.name not in resolver.names(ref.kind):
            p = unknown_name(ref, resolver.names(ref.kind))
            problems.append(Problem(p.what + " (not in the catalogue)", where, p.fix))
    return problems


def _playbook(doc: Playbook) -> list[Problem]:
    spec, problems = doc.spec, []
    if spec.runtime != "python" or spec.python is None or spec.python.code is None:
        problems.append(
            Problem(
                f"a written playbook must be `runtime: python` with its code in python.code, not "
                f"runtime {spec.runtime!r}" + ("" if spec.runtime != "python" else " without code"),
                f"{WHERE} > spec.runtime",
                "write the step as Python: spec.python.code (the source) and entrypoint main",
            )
        )
    if spec.files:
        problems.append(Problem("a written playbook ships no files", f"{WHERE} > spec.files", "remove them"))
    if spec.secrets:
        problems.append(
            Problem(
                "a written playbook asks for no secrets",
                f"{WHERE} > spec.secrets",
                "remove them; add secrets by hand after reviewing the code",
            )
        )
    return problems


def guard(datas: list[Any], mode: Mode, resolver: Resolver) -> Guarded:
    """The one document of the answer, checked for `mode`; SpecError with located problems."""
    data = _one(datas, mode)
    samples = data.get(SAMPLES_KEY) if mode == "playbook" else None
    params = data.get(PARAMS_KEY) if mode == "playbook" else None
    clean = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    doc = parse_document(clean, WHERE)
    problems = _playbook(doc) if isinstance(doc, Playbook) else _uses(doc, resolver)
    if samples is not None and not (
        isinstance(samples, dict) and all(isinstance(v, dict) for v in samples.values())
    ):
        problems.append(
            Problem(f"{SAMPLES_KEY} must map each input to a sample", f"{WHERE} > {SAMPLES_KEY}",
                    'write {"INPUT": {"value": ...}} or {"INPUT": {"filename": ..., "text": ...}}')
        )  # fmt: skip
    if params is not None and not isinstance(params, dict):
        problems.append(Problem(f"{PARAMS_KEY} must be a mapping", f"{WHERE} > {PARAMS_KEY}", "or omit it"))
    if problems:
        raise SpecError(problems)
    return Guarded(doc, clean, dict(samples or {}), dict(params or {}))
