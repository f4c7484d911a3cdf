"""`mlops n8n ...`: the shipped workflows installed into an n8n (`push`), pipelines as n8n workflows
(`export`) and back (`import`). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlops_nocode.cli.flowio import CatOpt, JsonOpt, emit_spec, pipeline_root, read_one_document
from mlops_nocode.cli.report import err, fail, write_output
from mlops_nocode.spec import Problem, SpecError

app = typer.Typer(
    help="n8n: ready workflows pushed to an n8n, pipelines as workflows and back.",
    no_args_is_help=True,
)


@app.command("export")
def export(
    pipeline: Annotated[str, typer.Argument(help="A spec file, or a ref such as pipeline/iris-classifier")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the workflow JSON there")] = None,
    catalogue: CatOpt = None,
    name: Annotated[str | None, typer.Option("--pipeline", "-p", help="Which pipeline of a file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render a pipeline as an n8n workflow: deploy through the gateway, wait for the signed end, one
    node per step wired as the DAG, end."""
    from mlops_nocode.integrations.n8n.export import export_workflow
    from mlops_nocode.integrations.n8n.shipped import render

    try:
        src = pipeline_root(pipeline, catalogue, name)
        wf = export_workflow(src.root)
    except SpecError as e:
        fail(e.problems, as_json)
    if out is None:
        print(render(wf), end="")
        return
    write_output(out, render(wf), "--out", as_json)
    if as_json:
        print(json.dumps({"status": "exported", "path": str(out)}))
    err.print(f"[green]✓[/] workflow written to {out}")


@app.command("import")
def import_(
    workflow_file: Annotated[Path, typer.Argument(help="An n8n workflow JSON file (as exported)")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the pipeline spec (YAML) there")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a workflow whose nodes are our gateway calls back into a pipeline spec."""
    from mlops_nocode.integrations.n8n.importer import import_workflow

    workflow = read_one_document(workflow_file, "workflow", "give one n8n workflow JSON file", as_json)
    doc, problems = import_workflow(workflow)
    emit_spec(doc, problems, out, as_json)


@app.command("push")
def push(
    pipelines: Annotated[
        list[str] | None,
        typer.Option(
            "--pipeline", "-p", help="Also push this pipeline as a workflow (file or ref; repeatable)"
        ),
    ] = None,
    gateway_url: Annotated[
        str | None,
        typer.Option("--gateway-url", help="Our gateway's URL as n8n reaches it (default: yours)"),
    ] = None,
    notify_url: Annotated[
        str | None,
        typer.Option(
            "--notify-url", help="Where the workflows' notify nodes POST (default: $MLOPS_NOTIFY_URL in n8n)"
        ),
    ] = None,
    activate: Annotated[
        bool, typer.Option("--activate/--no-activate", help="Activate the workflows (their triggers listen)")
    ] = True,
    catalogue: CatOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or update, by name, the shipped workflows (and --pipeline exports) in an n8n (N8N_API_URL,
    N8N_API_KEY), with a credential holding our gateway's key; activate them. Running it again updates in
    place."""
    from mlops_nocode.cli.gateway import normalize_url, resolve_credential
    from mlops_nocode.cli.source import load_source
    from mlops_nocode.integrations.n8n.client import URL_RE, Change, N8n
    from mlops_nocode.integrations.n8n.export import export_workflow
    from mlops_nocode.integrations.n8n.push import install, prepare, shipped_workflows
    from mlops_nocode.settings import Settings
    from mlops_nocode.spec import MetaPipeline, Pipeline

    settings = Settings()
    key = settings.n8n_api_key.get_secret_value() if settings.n8n_api_key else ""
    problems = []
    if not settings.n8n_api_url:
        problems.append(Problem("N8N_API_URL is not set", "N8N_API_URL", "e.g. http://127.0.0.1:5678"))
    if not key:
        problems.append(
            Problem("N8N_API_KEY is not set", "N8N_API_KEY", "create an API key in n8n: Settings > n8n API")
        )
    for opt, value in (("--gateway-url", gateway_url), ("--notify-url", notify_url)):
        if value is not None and not URL_RE.match(value):
            problems.append(Problem("not an http(s) URL", opt, "e.g. http://host.docker.internal:8000"))
    if problems:
        fail(problems, as_json)
    assert settings.n8n_api_url is not None
    try:
        workflows = shipped_workflows()
        for ref in pipelines or []:
            src = load_source(ref, catalogue or [])
            if not isinstance(src.root, Pipeline | MetaPipeline):
                raise SpecError(
                    Problem(f"{ref} is not a pipeline", "--pipeline", "give a pipeline ref or file")
                )
            workflows.append(export_workflow(src.root))
        cred = resolve_credential(as_json)
        url = normalize_url(gateway_url) if gateway_url else cred.url
        if not URL_RE.match(url):  # it goes into n8n expressions: no braces, no spaces
            what = f"the gateway URL {url[:80]!r} is not a plain http(s) URL"
            raise SpecError(Problem(what, "--gateway-url", "give --gateway-url http://HOST:PORT"))
        workflows = [prepare(wf, url, notify_url) for wf in workflows]
        n8n = N8n(settings.n8n_api_url, key, secrets=(cred.token,))
        try:
            changes: list[Change] = install(n8n, workflows, cred.token, activate)
        finally:
            n8n.close()
    except SpecError as e:
        fail(e.problems, as_json)
    if as_json:
        print(json.dumps({"status": "pushed", "changes": [c.__dict__ for c in changes]}, indent=2))
        return
    for c in changes:
        err.print(f"[green]✓[/] {c.kind} {c.name!r}: {c.action}", highlight=False)
