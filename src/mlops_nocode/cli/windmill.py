"""`mlops windmill ...`: pipelines as Windmill flows (`export`, `import`) and the blueprint's deployment
assets synced to a Windmill workspace (`push`). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode.cli.report import err, fail, write_output
from mlops_nocode.spec import Problem, SpecError

app = typer.Typer(help="Windmill: pipelines as flows and back; the deployment assets pushed to a workspace.",
                  no_args_is_help=True)  # fmt: skip

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
CatOpt = Annotated[
    list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue file or folder (repeatable)")
]


def _dump(doc: Any, fmt: str) -> str:
    import yaml

    if fmt == "yaml":
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@app.command("export")
def export(
    pipeline: Annotated[str, typer.Argument(help="A spec file, or a ref such as pipeline/iris-classifier")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder: writes f/mlops/NAME.flow/flow.yaml (wmill's layout)"),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="gateway: each module follows its step run by our gateway; "
                                         "scripts: Python steps as Windmill Python scripts")  # fmt: skip
    ] = "gateway",
    fmt: Annotated[str, typer.Option("--format", help="json or yaml (printed output)")] = "json",
    catalogue: CatOpt = None,
    name: Annotated[str | None, typer.Option("--pipeline", "-p", help="Which pipeline of a file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a pipeline as a Windmill flow (OpenFlow): one module per step, parallel levels as branchall."""
    from mlops_nocode.cli.source import load_source, validate_all
    from mlops_nocode.integrations.windmill.export import export_flow
    from mlops_nocode.spec import MetaPipeline, Pipeline

    problems = []
    if mode not in ("gateway", "scripts"):
        problems.append(Problem(f"unknown mode {mode[:40]!r}", "--mode", "use --mode gateway or --mode scripts"))
    if fmt not in ("json", "yaml"):
        problems.append(Problem(f"unknown format {fmt[:40]!r}", "--format", "use --format json or --format yaml"))
    if problems:
        fail(problems, as_json)
    try:
        src = load_source(pipeline, catalogue or [], name)
        if src.docs:
            validate_all(src, {})
        if not isinstance(src.root, Pipeline | MetaPipeline):
            raise SpecError(Problem(f"{pipeline} is not a pipeline", "PIPELINE", "give a Pipeline or MetaPipeline"))
        flow = export_flow(src.root, src.catalogue, "scripts" if mode == "scripts" else "gateway")
    except SpecError as e:
        fail(e.problems, as_json)
    if out is None:
        print(_dump(flow, fmt), end="")
        return
    folder = out / "f" / "mlops" / f"{src.root.metadata.name}.flow"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail([Problem(f"cannot create {folder}: {e.strerror or e}", "--out", "give a writable folder")], as_json)
    write_output(folder / "flow.yaml", _dump(flow, "yaml"), "--out", as_json)
    if as_json:
        print(json.dumps({"status": "exported", "path": str(folder / "flow.yaml")}))
    err.print(f"[green]✓[/] flow written to {folder / 'flow.yaml'}")


@app.command("import")
def import_(
    flow_file: Annotated[Path, typer.Argument(help="A Windmill flow: OpenFlow JSON or YAML (flow.yaml)")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the pipeline spec (YAML) there")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a flow whose modules are our gateway calls or Python scripts back into a pipeline spec."""
    import yaml

    from mlops_nocode.integrations.windmill.importer import import_flow
    from mlops_nocode.spec import parse_document

    where = str(flow_file)
    try:
        text = flow_file.read_text(encoding="utf-8")
        flow = yaml.safe_load(text)  # YAML reads JSON too
    except (OSError, UnicodeDecodeError) as e:
        fail([Problem(f"cannot read {flow_file}: {e}", where, "give a readable flow file")], as_json)
    except yaml.YAMLError as e:
        fail([Problem(f"not JSON or YAML: {str(e)[:200]}", where, "give an OpenFlow JSON or YAML file")], as_json)
    doc, problems = import_flow(flow if isinstance(flow, dict) else {})
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


@app.command("assets")
def assets(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder (default: the shipped orchestrator/windmill)")
    ] = None,
    pipeline: Annotated[
        str, typer.Option("--pipeline", "-p", help="The pipeline whose parameter form the app shows")
    ] = "pipeline/iris-classifier",
    catalogue: CatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """(Re)generate the ml_pipeline_deployment flow and the ML Pipeline Builder app as JSON files."""
    from mlops_nocode.cli.source import load_source
    from mlops_nocode.integrations.windmill.assets import builder_app, deployment_flow, shipped_assets
    from mlops_nocode.spec import MetaPipeline, Pipeline

    try:
        src = load_source(pipeline, catalogue or [])
        if not isinstance(src.root, Pipeline | MetaPipeline):
            raise SpecError(Problem(f"{pipeline} is not a pipeline", "--pipeline", "give a pipeline ref or file"))
    except SpecError as e:
        fail(e.problems, as_json)
    folder = out or shipped_assets()
    files = {
        folder / "flows" / "ml_pipeline_deployment.json": deployment_flow(),
        folder / "apps" / "ml_pipeline_builder.json": builder_app(src.root),
    }
    for path, doc in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            fail([Problem(f"cannot create {path.parent}: {e.strerror or e}", "--out", "give a writable folder")])
        write_output(path, _dump(doc, "json"), "--out", as_json)
    if as_json:
        print(json.dumps({"status": "written", "files": [str(p) for p in files]}))
    err.print(f"[green]✓[/] wrote {', '.join(str(p) for p in files)}")
