"""What the model is told about the catalogue: one compact signature per entry (name, version,
description, inputs and outputs with their types, parameter schema, runtime), bounded in size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.spec import Playbook, Ref, SpecError
from mlops_nocode.spec.refs import KINDS, Kind

_PARAM_KEYS = ("type", "enum", "default", "minimum", "maximum", "items")


def _param(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out = {k: schema[k] for k in _PARAM_KEYS if k in schema}
    if isinstance(out.get("enum"), list) and len(out["enum"]) > 12:
        out["enum"] = [*out["enum"][:12], "..."]
    if isinstance(out.get("items"), dict):
        out["items"] = _param(out["items"])
    return out


def signature(doc: Doc, describe: bool = True) -> dict[str, Any]:
    """The entry as the model needs it to use it: ref, runtime (playbooks), ports, parameters."""
    spec = doc.spec
    params = spec.parameters if isinstance(spec.parameters, dict) else {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = params.get("required") if isinstance(params.get("required"), list) else []
    sig: dict[str, Any] = {"uses": f"{doc.ref.kind}/{doc.metadata.name}@{doc.metadata.version}"}
    if describe and doc.metadata.description:
        sig["description"] = " ".join(doc.metadata.description.split())[:300]
    sig["inputs"] = {n: p.type + ("?" if p.optional else "") for n, p in spec.inputs.items()}
    if isinstance(doc, Playbook):
        sig["runtime"] = doc.spec.runtime
        sig["outputs"] = {n: p.type for n, p in doc.spec.outputs.items()}
    else:
        sig["outputs"] = dict(doc.spec.outputs)
    sig["parameters"] = {n: _param(s) for n, s in (props or {}).items()}
    if required:
        sig["required"] = list(required)
    return sig


@dataclass(frozen=True)
class Context:
    """The catalogue as text for the prompt, and the refs it names."""

    text: str
    entries: int
    shown: int
    names: dict[Kind, list[str]]


def latest_docs(resolver: Resolver) -> list[Doc]:
    """The latest version of every entry the resolver knows, playbooks first."""
    docs: list[Doc] = []
    for kind in KINDS:
        for name in resolver.names(kind):
            try:
                docs.append(resolver.resolve(Ref(kind, name)))
            except SpecError:
                continue
    return docs


def catalogue_context(resolver: Resolver, max_bytes: int) -> Context:
    """Signatures of every entry, one JSON line each, within `max_bytes`: descriptions are dropped first,
    then entries at the end (the text says how many were left out)."""
    docs = latest_docs(resolver)
    names = {k: resolver.names(k) for k in KINDS}
    for describe in (True, False):
        lines = [json.dumps(signature(d, describe), separators=(",", ":")) for d in docs]
        if sum(len(x) + 1 for x in lines) <= max_bytes:
            return Context("\n".join(lines), len(docs), len(docs), names)
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > max_bytes - 120:
            break
        kept.append(line)
        used += len(line) + 1
    left = len(lines) - len(kept)
    kept.append(
        f"# {left} more entries not shown: "
        + ", ".join(f"{d.ref.kind}/{d.metadata.name}" for d in docs[len(kept) :])[
            : max(0, max_bytes - used - 60)
        ]
    )
    return Context("\n".join(kept), len(docs), len(kept) - 1, names)
