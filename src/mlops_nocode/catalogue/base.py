"""The small interface the compiler resolves refs through, and an in-memory index behind it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import Protocol

import semver

from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, Ref, SpecError
from mlops_nocode.spec.refs import KIND_OF_DOC, Kind

Doc = Playbook | Pipeline | MetaPipeline


class Resolver(Protocol):
    """Finds the document a ref names. Implementations: folders now, Git repositories later."""

    def resolve(self, ref: Ref) -> Doc:
        """The highest version matching `ref`; raises SpecError naming what exists when none does."""
        ...

    def versions(self, kind: Kind, name: str) -> list[str]:
        """Every known version of one entry, any order."""
        ...

    def names(self, kind: Kind) -> list[str]:
        """Every known name of one kind, sorted (for "did you mean" hints)."""
        ...


def unknown_name(ref: Ref, names: Iterable[str]) -> Problem:
    """`unknown playbook 'x'`, with the closest of `names` or the list of them as the fix."""
    known = sorted(set(names))
    close = difflib.get_close_matches(ref.name, known, n=3)
    hint = (
        f"did you mean {', '.join(f'{ref.kind}/{c}' for c in close)}?"
        if close
        else f"known {ref.kind}s: {', '.join(known[:12]) or 'none'}" + (" ..." if len(known) > 12 else "")
    )
    return Problem(f"unknown {ref.kind} {ref.name!r}", str(ref), hint)


def no_matching_version(ref: Ref, versions: Iterable[str]) -> Problem:
    """`no version of playbook/x matches '^2'`, listing the known versions as the fix."""
    known = ", ".join(
        str(v) for v in sorted({semver.Version.parse(v) for v in versions if semver.Version.is_valid(v)})
    )
    return Problem(
        f"no version of {ref.kind}/{ref.name} matches {ref.version!r}",
        str(ref),
        f"use one of the known versions: {known}",
    )


class Index:
    """Documents indexed by kind, name and version. Later additions win over earlier ones."""

    def __init__(self, docs: Iterable[Doc] = ()) -> None:
        self._docs: dict[tuple[Kind, str], dict[str, Doc]] = {}
        self._cache: dict[Ref, Doc] = {}
        for doc in docs:
            self.add(doc)

    def add(self, doc: Doc) -> None:
        key = (KIND_OF_DOC[doc.kind], doc.metadata.name)
        self._docs.setdefault(key, {})[doc.metadata.version] = doc
        self._cache.clear()

    def __iter__(self) -> Iterator[Doc]:
        for versions in self._docs.values():
            yield from versions.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self._docs.values())

    def versions(self, kind: Kind, name: str) -> list[str]:
        return list(self._docs.get((kind, name), {}))

    def names(self, kind: Kind) -> list[str]:
        return sorted(n for (k, n) in self._docs if k == kind)

    def resolve(self, ref: Ref) -> Doc:
        hit = self._cache.get(ref)
        if hit is not None:
            return hit
        versions = self._docs.get((ref.kind, ref.name))
        if not versions:
            raise SpecError(unknown_name(ref, self.names(ref.kind)))
        best = ref.range.best(list(versions))
        if best is None:
            raise SpecError(no_matching_version(ref, versions))
        doc = versions[best]
        self._cache[ref] = doc
        return doc


class Chain:
    """Several resolvers in priority order: the first that knows the entry answers."""

    def __init__(self, resolvers: list[Resolver]) -> None:
        self.resolvers = resolvers

    def versions(self, kind: Kind, name: str) -> list[str]:
        return sorted({v for r in self.resolvers for v in r.versions(kind, name)})

    def names(self, kind: Kind) -> list[str]:
        return sorted({n for r in self.resolvers for n in r.names(kind)})

    def resolve(self, ref: Ref) -> Doc:
        """The answer of the first resolver knowing the entry that has a matching version. The problems
        raised otherwise name what every resolver knows."""
        first: SpecError | None = None
        for r in self.resolvers:
            if not r.versions(ref.kind, ref.name):
                continue
            try:
                return r.resolve(ref)
            except SpecError as e:
                first = first or e
        if first is not None:
            versions = self.versions(ref.kind, ref.name)
            if ref.range.best(versions) is None:  # name what every resolver knows, not the first one
                raise SpecError(no_matching_version(ref, versions)) from None
            raise first
        if not self.resolvers:
            raise SpecError(Problem(f"unknown {ref.kind} {ref.name!r}", str(ref), "configure a catalogue"))
        raise SpecError(unknown_name(ref, self.names(ref.kind)))
