"""Plan-time checks of a `litellm:` section beyond its expressions' names (compiler/sections.py): the
fields its mode needs and refuses, where a value may come from a parameter, which inputs can feed a
prompt, that `json_schema` is itself a valid JSON Schema, and that every output is filled with a value of
its type."""

from __future__ import annotations

import re

import jsonschema

from mlops_nocode.spec import Playbook, Problem
from mlops_nocode.spec.expressions import EXPR_RE, scan
from mlops_nocode.spec.llm import LitellmRuntime

ROUTE_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}"
PROMPT_INPUTS = frozenset({"text", "json", "file", "any", "metrics", "endpoint", "infra"})
"""Input types whose content can feed a prompt (a file is read as UTF-8 text, size-capped)."""
OUTPUT_TYPES: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "any"}),
    "json": frozenset({"json", "any"}),
    "embeddings": frozenset({"json", "any", "file", "dataset"}),
    "metrics": frozenset({"metrics"}),
}
"""Which declared output types can receive each thing a litellm step produces."""
MODE_FIELDS = {"chat": "messages", "completion": "prompt", "embedding": "input"}


def llm_problems(pb: Playbook) -> list[Problem]:
    """Located problems of a playbook's `litellm:` section ([] for other runtimes)."""
    section = pb.spec.litellm
    if pb.spec.runtime != "litellm" or section is None:
        return []
    where = f"{pb.ref} > spec.litellm"
    return [
        *_mode_problems(section, where),
        *_value_problems(section, where),
        *_input_problems(pb, section, where),
        *_schema_problems(section, where),
        *_output_problems(pb, section, where),
    ]


def _mode_problems(s: LitellmRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    needed = MODE_FIELDS[s.mode]
    if getattr(s, needed) in (None, []):
        example = {
            "messages": "messages: [{role: user, content: '${{ inputs.question }}'}]",
            "prompt": "prompt: 'Summarise: ${{ inputs.text }}'",
            "input": "input: '${{ inputs.texts }}'",
        }[needed]
        problems.append(Problem(f"mode {s.mode} needs `{needed}`", f"{where}.{needed}", f"add it: {example}"))
    for other in MODE_FIELDS.values():
        if other != needed and getattr(s, other) is not None:
            problems.append(
                Problem(
                    f"`{other}` is not used in mode {s.mode} (it takes `{needed}`)",
                    f"{where}.{other}",
                    f"remove it, or set mode: {_mode_of(other)}",
                )
            )
    unused = {
        "embedding": ("temperature", "max_tokens", "json_schema"),
        "completion": ("json_schema",),
        "chat": (),
    }[s.mode]
    for name in unused:
        if getattr(s, name) is not None:
            problems.append(
                Problem(f"`{name}` has no meaning in mode {s.mode}", f"{where}.{name}", "remove it")
            )
    return problems


def _mode_of(field: str) -> str:
    return next(m for m, f in MODE_FIELDS.items() if f == field)


def _whole_param(text: str) -> bool:
    m = EXPR_RE.fullmatch(text.strip())
    return m is not None and m[1] == "params" and m[3] is None


def _value_problems(s: LitellmRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    for at, name in [
        (f"{where}.model", s.model),
        *((f"{where}.fallbacks[{i}]", f) for i, f in enumerate(s.fallbacks)),
    ]:
        if not re.fullmatch(ROUTE_NAME_RE, name) and not _whole_param(name):
            problems.append(
                Problem(
                    f"{name!r} is neither a model route name nor one ${{{{ params.X }}}} expression",
                    at,
                    "name a route (letters, digits, . _ : / -; see `mlops llm routes list` or GET "
                    "/api/v1/models) or take it whole from a parameter: '${{ params.model }}'",
                )
            )
    for name, low, high, kind in (("temperature", 0.0, 2.0, float), ("max_tokens", 1, 1_000_000, int)):
        value = getattr(s, name)
        if isinstance(value, str):
            if not _whole_param(value):
                problems.append(
                    Problem(
                        f"{name} {value!r} is neither a number nor one ${{{{ params.X }}}} expression",
                        f"{where}.{name}",
                        f"give a number, or '${{{{ params.{name} }}}}' with a declared parameter",
                    )
                )
        elif value is not None and not (
            low <= value <= high and (kind is float or float(value).is_integer())
        ):
            problems.append(
                Problem(f"{name} {value!r} is out of range", f"{where}.{name}", f"give {low} to {high}")
            )
    if s.mode == "embedding" and s.input is not None and "${{" in s.input and not _whole_expr(s.input):
        problems.append(
            Problem(
                "an embedding input mixes an expression with other text",
                f"{where}.input",
                "give one expression whose value is a list of strings or a text: '${{ inputs.texts }}'",
            )
        )
    return problems


def _whole_expr(text: str) -> bool:
    m = EXPR_RE.fullmatch(text.strip())
    return m is not None and m[3] is None


def _input_problems(pb: Playbook, s: LitellmRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    texts = [(f"{where}.messages[{i}].content", m.content) for i, m in enumerate(s.messages or [])]
    texts += [(f"{where}.{k}", getattr(s, k)) for k in ("prompt", "input") if getattr(s, k) is not None]
    for at, text in texts:
        exprs, _ = scan(text, ("params", "inputs"), ())
        for e in exprs:
            port = pb.spec.inputs.get(e.name) if e.namespace == "inputs" else None
            if port is not None and port.type not in PROMPT_INPUTS:
                problems.append(
                    Problem(
                        f"input {e.name!r} is a {port.type}: its content cannot be put in a prompt",
                        at,
                        f"declare it as one of {', '.join(sorted(PROMPT_INPUTS))} (a file is read as text)",
                    )
                )
    return problems


def _schema_problems(s: LitellmRuntime, where: str) -> list[Problem]:
    if s.json_schema is None:
        return []
    at = f"{where}.json_schema"
    try:
        jsonschema.Draft202012Validator.check_schema(s.json_schema)
    except jsonschema.SchemaError as e:
        path = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in e.path)
        return [Problem(f"not a valid JSON Schema: {e.message}", at + path, "fix the schema (Draft 2020-12)")]
    if s.json_schema.get("type") != "object":
        return [
            Problem(
                "the schema's root must be `type: object` (models constrain answers to a JSON object)",
                f"{at}.type",
                "wrap the value: {type: object, properties: {answer: ...}, required: [answer]}",
            )
        ]
    return []


def _output_problems(pb: Playbook, s: LitellmRuntime, where: str) -> list[Problem]:
    problems: list[Problem] = []
    declared = pb.spec.outputs
    known = ", ".join(sorted(declared)) or "none"
    allowed = {"embedding": {"embeddings", "metrics"}}.get(s.mode, {"text", "json", "metrics"})
    for name, what in s.outputs.items():
        at = f"{where}.outputs.{name}"
        port = declared.get(name)
        if port is None:
            problems.append(
                Problem(
                    f"{name!r} is not a declared output",
                    at,
                    f"declare it under spec.outputs (known: {known})",
                )
            )
            continue
        if what not in allowed:
            problems.append(
                Problem(
                    f"mode {s.mode} gives no {what}",
                    at,
                    f"use one of: {', '.join(sorted(allowed))}",
                )
            )
        elif port.type not in OUTPUT_TYPES[what]:
            problems.append(
                Problem(
                    f"output {name!r} is a {port.type}, which cannot hold the {what}",
                    at,
                    f"declare it as one of {', '.join(sorted(OUTPUT_TYPES[what]))}",
                )
            )
    for name in declared:
        if name not in s.outputs:
            problems.append(
                Problem(
                    f"output {name!r} is never filled",
                    f"{pb.ref} > spec.outputs.{name}",
                    f"map it in litellm.outputs ({name}: text | json | embeddings | metrics), or remove it",
                )
            )
    return problems
