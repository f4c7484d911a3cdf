"""The compiler's verdict on a written document (the `mlops validate` path: schema, refs, types,
parameters, placement), and the unified diff against the catalogue's latest version of the same name."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import semver
import yaml

from mlops_nocode.catalogue.base import Chain, Doc, Index, Resolver
from mlops_nocode.compiler.check import Placement, validate_graphs, warnings_of
from mlops_nocode.spec import Problem, Ref, SpecError
from mlops_nocode.spec.refs import KIND_OF_DOC


def validate(doc: Doc, resolver: Resolver, placement: Placement | None) -> list[Problem]:
    """What `mlops validate` says of `doc` against the catalogue: its warnings; SpecError when invalid."""
    chain = Chain([Index([doc]), resolver])
    plans = validate_graphs([doc], doc, chain, {}, placement)
    return warnings_of([doc], plans)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (a playbook's code) as literal blocks, so the code reads as code."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def as_yaml(data: Any) -> str:
    """A document as the YAML the user reviews and the catalogue stores (key order kept)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def _existing(doc: Doc, resolver: Resolver) -> Doc | None:
    ref = Ref(KIND_OF_DOC[doc.kind], doc.metadata.name)
    if not resolver.versions(ref.kind, ref.name):
        return None
    try:
        return resolver.resolve(ref)
    except SpecError:
        return None


def next_version(doc: Doc, resolver: Resolver) -> str | None:
    """A version above the catalogue's latest when the written one already exists or is lower (versions
    are immutable), else None."""
    versions = resolver.versions(KIND_OF_DOC[doc.kind], doc.metadata.name)
    valid = [semver.Version.parse(v) for v in versions if semver.Version.is_valid(v)]
    if not valid:
        return None
    latest = max(valid)
    mine = (
        semver.Version.parse(doc.metadata.version) if semver.Version.is_valid(doc.metadata.version) else None
    )
    if mine is not None and mine > latest:
        return None
    return str(latest.bump_minor())


def diff(doc: Doc, text: str, resolver: Resolver, stored: Callable[[Doc], str | None] | None = None) -> str:
    """Unified diff from the catalogue's latest version of the same kind and name (as stored, when
    `stored` gives its text; else as its fields) to `text`; empty when the name is new."""
    old = _existing(doc, resolver)
    if old is None:
        return ""
    before = stored(old) if stored is not None else None
    if before is None:
        before = as_yaml(old.model_dump(mode="json", by_alias=True, exclude_unset=True))
    name = f"{KIND_OF_DOC[old.kind]}/{old.metadata.name}"
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"a/{name}@{old.metadata.version}",
            f"b/{name}@{doc.metadata.version} (assistant)",
        )
    )
