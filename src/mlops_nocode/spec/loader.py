"""Loading spec documents from YAML or JSON text and files, with located errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from mlops_nocode.spec.errors import Problem, SpecError
from mlops_nocode.spec.models import API_VERSION, Document, MetaPipeline, Pipeline, Playbook

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
MAX_SPEC_BYTES = 5 * 1024 * 1024
_ADAPTER: TypeAdapter[Playbook | Pipeline | MetaPipeline] = TypeAdapter(Document)
_KINDS = ("Playbook", "Pipeline", "MetaPipeline")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _KINDS:
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_document(data: Any, where: str = "") -> Playbook | Pipeline | MetaPipeline:
    """Validate one already-parsed mapping as a spec document."""
    prefix = f"{where} > " if where else ""
    if not isinstance(data, dict):
        raise SpecError(Problem("a spec document must be a mapping", where, "start it with 'apiVersion:'"))
    if data.get("apiVersion") != API_VERSION:
        raise SpecError(
            Problem(
                f"apiVersion is {data.get('apiVersion')!r}",
                f"{prefix}apiVersion",
                f"set apiVersion: {API_VERSION}",
            )
        )
    if data.get("kind") not in _KINDS:
        raise SpecError(
            Problem(f"unknown kind {data.get('kind')!r}", f"{prefix}kind", f"use one of {', '.join(_KINDS)}")
        )
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if name:
        prefix = f"{where} ({data['kind']} {name}) > " if where else f"{str(data['kind']).lower()}/{name} > "
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            fix = (
                "remove it or check its spelling"
                if err["type"] == "extra_forbidden"
                else "see `mlops schema`"
            )
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            problems.append(Problem(msg, prefix + _loc(err["loc"]), fix))
        raise SpecError(problems) from None


def load_text(text: str, source: str = "<text>") -> list[Playbook | Pipeline | MetaPipeline]:
    """Every document of a YAML (possibly multi-document) or JSON text, validated."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise SpecError(Problem("spec is larger than 5 MiB", source, "split it into several files"))
    try:
        if text.lstrip().startswith(("{", "[")):
            raw = json.loads(text)
            datas = raw if isinstance(raw, list) else [raw]
        else:
            datas = [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        if isinstance(e, json.JSONDecodeError):
            where = f"{source}:{e.lineno}:{e.colno}"
        raise SpecError(
            Problem(
                f"not valid YAML/JSON: {getattr(e, 'problem', None) or e}",
                where,
                "fix the syntax at that line",
            )
        ) from None
    if not datas:
        raise SpecError(Problem("no document found", source, "write at least one spec document"))
    docs, problems = [], []
    for i, data in enumerate(datas):
        where = source if len(datas) == 1 else f"{source} document {i + 1}"
        try:
            docs.append(parse_document(data, where))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    return docs


def load_file(path: str | Path) -> list[Playbook | Pipeline | MetaPipeline]:
    """Every document in one YAML/JSON file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SpecError(Problem(f"cannot read: {e.strerror}", str(p), "check the path")) from None
    return load_text(text, str(p))


def iter_spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly plus spec files found recursively under named folders, sorted."""
    out: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix in SPEC_SUFFIXES and f.is_file()))
        else:
            out.append(p)
    return out
