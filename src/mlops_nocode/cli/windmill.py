"""`mlops windmill ...`: pipelines as Windmill flows (`export`, `import`) and the blueprint's deployment
assets synced to a Windmill workspace (`push`). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode.cli.flowio import CatOpt, JsonOpt, emit_spec, pipeline_root, read_one_document
from mlops_nocode.cli.report import err, fail, write_output
from mlops_nocode.spec import Problem, SpecError

app = typer.Typer(
    help="Windmill: pipelines as flows and back; the deployment assets pushed to a workspace.",
    no_args_is_help=True,
)


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
        typer.Option("--out", "-o", help="Folder: writes f/mlops/NAME.flow/flow.yaml (wmill sync's layout)"),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="gateway: each module follows its step run by our gateway; "
            "scripts: Python steps as Windmill Python scripts",
        ),
    ] = "gateway",
    fmt: Annotated[str, typer.Option("--format", help="json or yaml (printed output)")] = "json",
    catalogue: CatOpt = None,
    name: Annotated[str | None, typer.Option("--pipeline", "-p", help="Which pipeline of a file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a pipeline as a Windmill flow (OpenFlow): one module per step, parallel levels as branchall."""
    from mlops_nocode.integrations.windmill.export import export_flow, flow_path

    problems = []
    if mode not in ("gateway", "scripts"):
        problems.append(
            Problem(f"unknown mode {mode[:40]!r}", "--mode", "use --mode gateway or --mode scripts")
        )
    if fmt not in ("json", "yaml"):
        problems.append(
            Problem(f"unknown format {fmt[:40]!r}", "--format", "use --format json or --format yaml")
        )
    if problems:
        fail(problems, as_json)
    try:
        src = pipeline_root(pipeline, catalogue, name)
        flow = export_flow(src.root, src.catalogue, "scripts" if mode == "scripts" else "gateway")
    except SpecError as e:
        fail(e.problems, as_json)
    if out is None:
        print(_dump(flow, fmt), end="")
        return
    folder = out / f"{flow_path(src.root)}.flow"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(
            [Problem(f"cannot create {folder}: {e.strerror or e}", "--out", "give a writable folder")],
            as_json,
        )
    write_output(folder / "flow.yaml", _dump(flow, "yaml"), "--out", as_json)
    if as_json:
        print(json.dumps({"status": "exported", "path": str(folder / "flow.yaml")}))
    err.print(f"[green]✓[/] flow written to {folder / 'flow.yaml'}")


@app.command("import")
def import_(
    flow_file: Annotated[Path, typer.Argument(help="A Windmill flow: OpenFlow JSON or YAML (flow.yaml)")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the pipeline spec (YAML) there")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a flow whose modules are our gateway calls or Python scripts back into a pipeline spec."""
    from mlops_nocode.integrations.windmill.importer import import_flow

    flow = read_one_document(flow_file, "flow", "give one OpenFlow JSON or YAML document", as_json)
    doc, problems = import_flow(flow)
    emit_spec(doc, problems, out, as_json)


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
            raise SpecError(
                Problem(f"{pipeline} is not a pipeline", "--pipeline", "give a pipeline ref or file")
            )
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
            fail(
                [
                    Problem(
                        f"cannot create {path.parent}: {e.strerror or e}", "--out", "give a writable folder"
                    )
                ]
            )
        write_output(path, _dump(doc, "json"), "--out", as_json)
    if as_json:
        print(json.dumps({"status": "written", "files": [str(p) for p in files]}))
    err.print(f"[green]✓[/] wrote {', '.join(str(p) for p in files)}")


@app.command("push")
def push(
    workspace: Annotated[
        str, typer.Option("--workspace", "-w", envvar="WINDMILL_WORKSPACE", help="Windmill workspace id")
    ] = "admins",
    pipelines: Annotated[
        list[str] | None,
        typer.Option("--pipeline", "-p", help="Also push this pipeline as a flow (file or ref; repeatable)"),
    ] = None,
    gateway_url: Annotated[
        str | None,
        typer.Option(
            "--gateway-url", help="Our gateway's URL as Windmill's workers reach it (default: yours)"
        ),
    ] = None,
    credentials: Annotated[
        bool,
        typer.Option(
            "--credentials/--no-credentials",
            help="Store the gateway URL and key as f/mlops/gateway_url and the secret f/mlops/gateway_key",
        ),
    ] = True,
    catalogue: CatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update, by path, the folder f/mlops, its variables, scripts, flows and app in a Windmill
    workspace (WINDMILL_API_URL, WINDMILL_API_KEY). Running it again updates in place."""
    from mlops_nocode.cli.gateway import normalize_url, resolve_credential
    from mlops_nocode.cli.source import load_source
    from mlops_nocode.integrations.windmill.assets import (
        APP_PATH,
        FLOW_PATH,
        builder_app,
        deployment_flow,
        scripts,
        shipped_assets,
    )
    from mlops_nocode.integrations.windmill.export import export_flow, flow_path
    from mlops_nocode.integrations.windmill.push import Change, Variable, Workspace
    from mlops_nocode.settings import Settings
    from mlops_nocode.spec import MetaPipeline, Pipeline

    settings = Settings()
    key = settings.windmill_api_key.get_secret_value() if settings.windmill_api_key else ""
    problems = []
    if not settings.windmill_api_url:
        problems.append(
            Problem("WINDMILL_API_URL is not set", "WINDMILL_API_URL", "e.g. http://127.0.0.1:8001")
        )
    if not key:
        problems.append(
            Problem(
                "WINDMILL_API_KEY is not set",
                "WINDMILL_API_KEY",
                "create a token in Windmill's user settings",
            )
        )
    if gateway_url is not None and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", gateway_url):
        problems.append(
            Problem("not an http(s) URL", "--gateway-url", "e.g. http://host.docker.internal:8000")
        )
    if problems:
        fail(problems, as_json)
    assert settings.windmill_api_url is not None
    flows: dict[str, dict[str, Any]] = {FLOW_PATH: deployment_flow()}
    app_pipeline: Any = None
    try:
        for ref in pipelines or []:
            src = load_source(ref, catalogue or [])
            if not isinstance(src.root, Pipeline | MetaPipeline):
                raise SpecError(
                    Problem(f"{ref} is not a pipeline", "--pipeline", "give a pipeline ref or file")
                )
            flows[flow_path(src.root)] = export_flow(src.root, src.catalogue)
            app_pipeline = app_pipeline or src.root
        if app_pipeline is None:
            app_pipeline = load_source("pipeline/iris-classifier", catalogue or []).root
        variables = []
        if credentials:
            cred = resolve_credential(as_json)
            url = normalize_url(gateway_url) if gateway_url else cred.url
            variables = [
                Variable("f/mlops/gateway_url", url, False, "URL of the MLOps No-Code gateway"),
                Variable("f/mlops/gateway_key", cred.token, True, "API key of the MLOps No-Code gateway"),
            ]
        changes: list[Change] = []
        ws = Workspace(settings.windmill_api_url, key, workspace, secrets=tuple(v.value for v in variables))
        try:
            changes.append(ws.folder("mlops"))
            changes += [ws.variable(v) for v in variables]
            changes += [ws.script(s) for s in scripts(shipped_assets())]
            changes += [ws.flow(path, flow) for path, flow in flows.items()]
            changes.append(ws.app(APP_PATH, builder_app(app_pipeline)))
        finally:
            ws.close()
    except SpecError as e:
        fail(e.problems, as_json)
    if as_json:
        print(json.dumps({"status": "pushed", "changes": [c.__dict__ for c in changes]}, indent=2))
        return
    for c in changes:
        err.print(f"[green]✓[/] {c.kind} {c.path}: {c.action}", highlight=False)
