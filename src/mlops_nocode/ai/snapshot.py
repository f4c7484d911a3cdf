"""One state of the catalogue for one assistant request: a resolver whose answers are memoised, so the
Git catalogue's freshness checks (a stat of its refs per lookup) are paid once per entry, not once per
step of every answer and repair."""

from __future__ import annotations

from mlops_nocode.catalogue.base import Doc, Resolver
from mlops_nocode.spec import Ref, SpecError
from mlops_nocode.spec.refs import Kind


class Snapshot:
    """`inner`'s answers, each asked once."""

    def __init__(self, inner: Resolver) -> None:
        self.inner = inner
        self._docs: dict[Ref, Doc | SpecError] = {}
        self._versions: dict[tuple[Kind, str], list[str]] = {}
        self._names: dict[Kind, list[str]] = {}

    def resolve(self, ref: Ref) -> Doc:
        if ref not in self._docs:
            try:
                self._docs[ref] = self.inner.resolve(ref)
            except SpecError as e:
                self._docs[ref] = e
        found = self._docs[ref]
        if isinstance(found, SpecError):
            raise SpecError(found.problems)
        return found

    def versions(self, kind: Kind, name: str) -> list[str]:
        if (kind, name) not in self._versions:
            self._versions[(kind, name)] = self.inner.versions(kind, name)
        return list(self._versions[(kind, name)])

    def names(self, kind: Kind) -> list[str]:
        if kind not in self._names:
            self._names[kind] = self.inner.names(kind)
        return list(self._names[kind])
