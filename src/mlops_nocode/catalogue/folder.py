"""Folder-backed catalogues: the built-in seed and files or folders named on the command line."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from mlops_nocode.catalogue.base import Chain, Doc, Index
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.loader import iter_spec_files, load_file


def builtin_path() -> Path:
    """Where the built-in catalogue seed lives: inside the wheel, or at the root of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_catalogue"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "catalogue"


def load_folder(paths: Iterable[str | Path]) -> list[Doc]:
    """Every document in the named files and (recursively) folders; all problems reported together."""
    docs: list[Doc] = []
    problems: list[Problem] = []
    for f in iter_spec_files(paths):
        try:
            docs.extend(load_file(f))
        except SpecError as e:
            problems.extend(e.problems)
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
    """Extra documents (from the command line) first, then the built-in seed."""
    resolvers: list[Index] = []
    if extra:
        resolvers.append(Index(extra))
    if builtin:
        resolvers.append(builtin_index())
    return Chain(list(resolvers))
