"""Catalogues of specs and ref resolution (folders now; Git repositories behind the same interface)."""

from mlops_nocode.catalogue.base import Chain, Doc, Index, Resolver
from mlops_nocode.catalogue.folder import builtin_index, builtin_path, catalogue_for, load_folder

__all__ = [
    "Chain",
    "Doc",
    "Index",
    "Resolver",
    "builtin_index",
    "builtin_path",
    "catalogue_for",
    "load_folder",
]
