"""Folder-backed catalogues: the built-in seed and files or folders named on the command line."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from mlops_nocode.catalogue.base import Chain, Doc, Index
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.loader import iter_spec_sources, load_file
from mlops_nocode.spec.refs import KIND_OF_DOC, Kind

_ORIGINS: dict[int, str] = {}
"""The file each loaded document came from, by id(doc); an entry goes when its document does."""


def builtin_path() -> Path:
    """Where the built-in catalogue seed lives: inside the wheel, or at the root of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_catalogue"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "catalogue"


def _remember(doc: Doc, origin: str) -> None:
    key = id(doc)
    if key not in _ORIGINS:
        _ORIGINS[key] = origin
        weakref.finalize(doc, _ORIGINS.pop, key, None)


def origin_of(doc: Doc) -> str | None:
    """The file a document was loaded from by `load_folder`, or None."""
    return _ORIGINS.get(id(doc))


def duplicate_problems(docs: Iterable[Doc]) -> list[Problem]:
    """One problem per kind+name+version defined twice with different content (identical copies are fine)."""
    first: dict[tuple[Kind, str, str], Doc] = {}
    problems: list[Problem] = []
    for doc in docs:
        key = (KIND_OF_DOC[doc.kind], doc.metadata.name, doc.metadata.version)
        seen = first.setdefault(key, doc)
        if seen is doc or seen == doc:
            continue
        a, b = origin_of(seen), origin_of(doc)
        what = f"{doc.ref} is defined twice with different content"
        if a and b:
            what += f": {a} and {b}" if a != b else f" in {a}"
        problems.append(Problem(what, b or str(doc.ref), "bump the version of one or remove it"))
    return problems


def load_folder(paths: Iterable[str | Path]) -> list[Doc]:
    """Every document in the named files and (recursively) folders; all problems reported together.

    Files named directly must be specs. In folders, hidden files and folders are skipped, and so are
    files that hold no mapping with an `apiVersion` or `kind` key (package.json, CI workflows...).
    A kind+name+version defined twice with different content is a problem.
    """
    docs: list[Doc] = []
    problems: list[Problem] = []
    for f, named in iter_spec_sources(paths):
        try:
            found = load_file(f, skip_non_specs=not named)
        except SpecError as e:
            problems.extend(e.problems)
            continue
        for doc in found:
            _remember(doc, str(f))
        docs.extend(found)
    problems.extend(duplicate_problems(docs))
    if problems:
        raise SpecError(problems)
    return docs


@cache
def builtin_index() -> Index:
    """The built-in catalogue, loaded once per process."""
    root = builtin_path()
    if not root.is_dir():
        raise SpecError(Problem("built-in catalogue not found", str(root), "reinstall mlops-nocode"))
    return Index(load_folder([root]))


def catalogue_for(extra: list[Doc] | None = None, builtin: bool = True) -> Chain:
    """Extra documents (from the command line) first, then the built-in seed.

    The extra documents must not define one kind+name+version twice with different content (they may
    override a built-in entry)."""
    resolvers: list[Index] = []
    if extra:
        problems = duplicate_problems(extra)
        if problems:
            raise SpecError(problems)
        resolvers.append(Index(extra))
    if builtin:
        resolvers.append(builtin_index())
    return Chain(list(resolvers))
