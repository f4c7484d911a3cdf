"""Turning a command line's FILE|REF and --set options into documents, a catalogue and parameters."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_nocode.catalogue import Chain, Doc, load_folder
from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.compiler import Plan
from mlops_nocode.compiler.check import Placement, validate_graphs
from mlops_nocode.spec import MetaPipeline, Pipeline, Problem, Ref, RefError, SpecError
from mlops_nocode.spec.loader import yaml_load_value


@dataclass
class Source:
    """What a command acts on: the extra documents it brought, the catalogue, and the root to compile."""

    docs: list[Doc]
    catalogue: Chain
    root: Doc
    spec_dirs: list[Path]


def _is_string_param(schema: dict[str, Any], path: list[str]) -> bool:
    node: Any = schema
    for part in path:
        props = node.get("properties", {}) if isinstance(node, dict) else {}
        node = props.get(part) if isinstance(props, dict) else None
    if not isinstance(node, dict):
        return False
    t = node.get("type")
    return t == "string" or (isinstance(t, list) and "string" in t and len(t) == 1)


def parse_sets(sets: list[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """`--set k=v` (value read as YAML: numbers, booleans, lists) and `--set a.b=v` for nested objects.

    A parameter whose schema type is string keeps the raw text (`--set version=1.10` stays "1.10").
    """
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise SpecError(
                Problem(
                    f"invalid --set {item!r}", "--set", "write --set NAME=VALUE, e.g. --set n_estimators=50"
                )
            )
        if schema is not None and _is_string_param(schema, parts):
            value: Any = raw
        else:
            try:
                value = yaml_load_value(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(
                Problem(
                    f"--set {key}: {raw!r} is not a finite number",
                    "--set",
                    "give a finite number, or quote it to pass text",
                )
            )
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(Problem(f"--set {key}: {part} is already a value", "--set", "set it once"))
        node[parts[-1]] = value
    return out


def load_source(target: str, catalogues: list[str], pipeline: str | None = None) -> Source:
    """Load FILE|FOLDER|REF: files join the catalogue and are all validated; refs resolve through it."""
    path = Path(target)
    extra_paths = [Path(c) for c in catalogues]
    for c in extra_paths:
        if not c.exists():
            raise SpecError(Problem(f"catalogue path {c} does not exist", "--catalogue", "check the path"))
    docs: list[Doc] = load_folder(extra_paths) if extra_paths else []
    spec_dirs = [d for p in extra_paths for d in _spec_dirs(p)]
    own: list[Doc] = []
    if path.exists():
        own = load_folder([path])
        if not own:
            raise SpecError(Problem("no spec document found", str(path), "give a YAML or JSON spec file"))
        docs.extend(own)
        spec_dirs.extend(_spec_dirs(path))
    catalogue = configured_catalogue(docs)
    if own:
        graphs = [d for d in own if isinstance(d, Pipeline | MetaPipeline)]
        if pipeline:
            named = [d for d in graphs if d.metadata.name == pipeline]
            if not named:
                known = ", ".join(d.metadata.name for d in graphs) or "none"
                raise SpecError(
                    Problem(
                        f"no Pipeline or MetaPipeline named {pipeline!r} in {path}",
                        "--pipeline",
                        f"name one of the pipelines in it: {known}",
                    )
                )
            graphs = named
        root: Doc = graphs[-1] if graphs else own[-1]
    else:
        if pipeline:
            target = f"pipeline/{pipeline}" if "/" not in pipeline else pipeline
        try:
            ref = Ref.parse(target)
        except RefError as e:
            raise SpecError(
                Problem(
                    f"{target!r} is neither a file nor a ref ({e})",
                    target,
                    "give a spec file path, or a ref such as pipeline/iris-classifier",
                )
            ) from None
        root = catalogue.resolve(ref)
    return Source(docs, catalogue, root, spec_dirs)


def _spec_dirs(path: Path) -> list[Path]:
    """The folder of a spec file (and of its target, when it is a symlink), or the folder itself."""
    if path.is_dir():
        return [path]
    return list(dict.fromkeys([path.parent, path.resolve().parent]))


def validate_all(src: Source, params: dict[str, Any], placement: Placement | None = None) -> list[Plan]:
    """Check every document the user brought (the root with `params`); raise on any problem. With
    `placement`, pipelines that can run on their own must fit their targets."""
    return validate_graphs(src.docs, src.root, src.catalogue, params, placement)


def add_python_path(dirs: list[Path]) -> list[str]:
    """Let Python steps import modules that sit beside the spec files (inherited by step processes).

    Returns the absolute folders added, which the plan records so `mlops execute` finds them too.
    """
    new = list(dict.fromkeys(str(d.absolute()) for d in dirs))
    for d in reversed(new):
        if d not in sys.path:
            sys.path.insert(0, d)
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*new, *current]))
    return new
