"""What the orchestrator commands (`mlops n8n`, `mlops windmill`) share: the pipeline an export starts
from, the one workflow or flow document an import reads, and the spec an import writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode.cli.report import err, fail, write_output
from mlops_nocode.spec import Problem, SpecError

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
CatOpt = Annotated[
    list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue file or folder (repeatable)")
]


def pipeline_root(pipeline: str, catalogue: list[str] | None, name: str | None) -> Any:
    """The source (`cli.source.Source`) of the Pipeline or MetaPipeline `pipeline` names (a file or a
    ref), every document of a file validated; SpecError with located problems otherwise."""
    from mlops_nocode.cli.source import load_source, validate_all
    from mlops_nocode.spec import MetaPipeline, Pipeline

    src = load_source(pipeline, catalogue or [], name)
    if src.docs:
        validate_all(src, {})
    if not isinstance(src.root, Pipeline | MetaPipeline):
        raise SpecError(
            Problem(f"{pipeline} is not a pipeline", "PIPELINE", "give a Pipeline or MetaPipeline")
        )
    return src


def read_one_document(path: Path, what: str, fix: str, as_json: bool) -> dict[str, Any]:
    """The one JSON or YAML mapping in `path`, read strictly (no duplicate keys, no alias bombs); exits 2
    with a located problem otherwise. `what` names the document ("workflow"), `fix` says what to give."""
    from mlops_nocode.spec.yamlio import parse_texts

    where = str(path)
    try:
        docs = parse_texts(path.read_text(encoding="utf-8"), where)
    except (OSError, UnicodeDecodeError) as e:
        fail([Problem(f"cannot read {path}: {e}", where, f"give a readable {what} file")], as_json)
    except SpecError as e:
        fail(e.problems, as_json)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        fail([Problem(f"not one {what} document", where, fix)], as_json)
    return docs[0]


def emit_spec(doc: dict[str, Any] | None, problems: list[Problem], out: Path | None, as_json: bool) -> None:
    """Print or write (`--out`) the spec an import built, once the spec layer accepts it; exits 2 with
    the import's or the spec's located problems otherwise."""
    import yaml

    from mlops_nocode.spec import parse_document

    if doc is None:
        fail(problems, as_json)
    try:
        parse_document(doc)
    except SpecError as e:
        fail(e.problems, as_json)
    text = str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    if out is None:
        print(json.dumps(doc, indent=2) if as_json else text, end="\n" if as_json else "")
        return
    write_output(out, text, "--out", as_json)
    err.print(f"[green]✓[/] pipeline spec written to {out}")
