"""Loading spec documents from YAML or JSON text and files, with located errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from mlops_nocode.spec.errors import Problem, SpecError
from mlops_nocode.spec.limits import check_data
from mlops_nocode.spec.models import API_VERSION, Document, MetaPipeline, Pipeline, Playbook
from mlops_nocode.spec.refs import NAME_RE
from mlops_nocode.spec.yamlio import parse_texts, yaml_load_value

__all__ = [
    "MAX_SPEC_BYTES",
    "SPEC_SUFFIXES",
    "iter_spec_files",
    "iter_spec_sources",
    "load_file",
    "load_text",
    "parse_document",
    "yaml_load_value",
]

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
MAX_SPEC_BYTES = 5 * 1024 * 1024
_ADAPTER: TypeAdapter[Playbook | Pipeline | MetaPipeline] = TypeAdapter(Document)
_KINDS = ("Playbook", "Pipeline", "MetaPipeline")
_LOOKS_LIKE_SPEC = re.compile(r"""^[ \t{,]*["']?(apiVersion|kind)["']?[ \t]*:""", re.MULTILINE)
_SNIFF_BYTES = 64 * 1024
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_document(data: Any, where: str = "") -> Playbook | Pipeline | MetaPipeline:
    """Validate one already-parsed mapping as a spec document."""
    prefix = f"{where} > " if where else ""
    if not isinstance(data, dict):
        raise SpecError(Problem("a spec document must be a mapping", where, "start it with 'apiVersion:'"))
    if data.get("apiVersion") != API_VERSION:
        raise SpecError(
            Problem(
                f"apiVersion is {_short(data.get('apiVersion'))}",
                f"{prefix}apiVersion",
                f"set apiVersion: {API_VERSION}",
            )
        )
    if data.get("kind") not in _KINDS:
        raise SpecError(
            Problem(
                f"unknown kind {_short(data.get('kind'))}", f"{prefix}kind", f"use one of {', '.join(_KINDS)}"
            )
        )
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and NAME_RE.fullmatch(name):
        prefix = f"{where} ({data['kind']} {name}) > " if where else f"{str(data['kind']).lower()}/{name} > "
    check_data(data, prefix)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        raise SpecError([_problem(err, prefix) for err in e.errors()]) from None


def _problem(err: ErrorDetails, prefix: str) -> Problem:
    where = prefix + _loc(err["loc"])
    if err["type"] == "extra_forbidden":
        return Problem("unknown field", where, "remove it or check its spelling")
    if err["loc"][1:] == ("metadata", "version") and not isinstance(err["input"], str):
        return Problem(
            f"version must be a quoted semver string, not {_short(err['input'])}",
            where,
            'quote it: version: "1.0.0"',
        )
    cause = (err.get("ctx") or {}).get("error")
    fix = getattr(cause, "fix", None) or "see `mlops schema`"
    return Problem(err["msg"].removeprefix("Value error, "), where, fix)


def load_text(text: str, source: str = "<text>") -> list[Playbook | Pipeline | MetaPipeline]:
    """Every document of a YAML (possibly multi-document) or JSON text, validated."""
    if len(text.encode(errors="replace")) > MAX_SPEC_BYTES:
        raise SpecError(Problem("spec is larger than 5 MiB", source, "split it into several files"))
    return _validate(parse_texts(text, source), source)


def _validate(datas: list[Any], source: str) -> list[Playbook | Pipeline | MetaPipeline]:
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


def _is_spec_data(data: Any) -> bool:
    return isinstance(data, dict) and ("apiVersion" in data or "kind" in data)


def load_file(path: str | Path, *, skip_non_specs: bool = False) -> list[Playbook | Pipeline | MetaPipeline]:
    """Every document in one YAML/JSON file.

    With `skip_non_specs` (used when walking a folder) a file none of whose documents is a mapping with
    an `apiVersion` or `kind` key is not a spec: it gives no document instead of an error. A file that
    cannot be read as YAML/JSON is skipped the same way unless its text shows such a key.
    """
    p = Path(path)
    source = str(p)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(Problem(f"cannot read: {e.strerror or e}", source, "check the path")) from None

    def sniffed_spec() -> bool:
        encoding = "utf-16" if raw.startswith(_UTF16_BOMS) else "utf-8"
        return bool(_LOOKS_LIKE_SPEC.search(raw[:_SNIFF_BYTES].decode(encoding, errors="replace")))

    if len(raw) > MAX_SPEC_BYTES:
        if skip_non_specs and not sniffed_spec():
            return []
        raise SpecError(Problem("spec is larger than 5 MiB", source, "split it into several files"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if skip_non_specs and not sniffed_spec():
            return []
        raise SpecError(_not_utf8(raw, e, source)) from None
    try:
        datas = parse_texts(text, source)
    except SpecError:
        if skip_non_specs and not _LOOKS_LIKE_SPEC.search(text):
            return []
        raise
    if skip_non_specs and not any(_is_spec_data(d) for d in datas):
        return []
    return _validate(datas, source)


def _not_utf8(raw: bytes, e: UnicodeDecodeError, source: str) -> Problem:
    fix = "save the file as UTF-8 (in most editors: Save with Encoding > UTF-8)"
    if raw.startswith(_UTF16_BOMS):
        return Problem("not UTF-8 text: it is UTF-16", source, fix)
    line = raw[: e.start].count(b"\n") + 1
    return Problem(f"not UTF-8 text: byte 0x{raw[e.start]:02x} cannot be decoded", f"{source}:{line}", fix)


def iter_spec_sources(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """`(file, named)` pairs: files named directly (`named` True, kept whatever their name), then for each
    named folder its .yaml/.yml/.json files found recursively (`named` False), sorted, skipping hidden
    files and folders (a name starting with '.') below it. Linked folders are followed once."""
    out: list[tuple[Path, bool]] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            out.append((p, True))
            continue
        found: list[Path] = []
        walked: set[str] = set()
        for root, dirs, files in os.walk(p, followlinks=True):
            real = os.path.realpath(root)
            if real in walked:  # a symlink loop, or a folder linked twice
                dirs[:] = []
                continue
            walked.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(
                Path(root) / f
                for f in files
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in SPEC_SUFFIXES
            )
        out.extend((f, False) for f in sorted(found) if f.is_file())
    return out


def iter_spec_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly plus spec files found recursively under named folders (hidden ones skipped)."""
    return [f for f, _ in iter_spec_sources(paths)]
