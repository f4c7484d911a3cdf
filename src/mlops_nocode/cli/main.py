"""The `mlops` command: validate, plan, run and execute pipelines; export the spec's JSON Schema."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_nocode import __version__
from mlops_nocode.cli import assist as assist_cli
from mlops_nocode.cli import catalogue as catalogue_cli
from mlops_nocode.cli import infra as infra_cli
from mlops_nocode.cli import keys as keys_cli
from mlops_nocode.cli import llm as llm_cli
from mlops_nocode.cli import login as login_cli
from mlops_nocode.cli import monitoring as monitoring_cli
from mlops_nocode.cli import n8n as n8n_cli
from mlops_nocode.cli import remote as remote_cli
from mlops_nocode.cli import serve as serve_cli
from mlops_nocode.cli import server as server_cli
from mlops_nocode.cli import targets as targets_cli
from mlops_nocode.cli import throttle as throttle_cli
from mlops_nocode.cli import windmill as windmill_cli
from mlops_nocode.cli.execute import execute_plan
from mlops_nocode.cli.report import err, fail, out, write_output
from mlops_nocode.spec import Problem, SpecError

app = typer.Typer(
    name="mlops",
    help="MLOps No-Code Platform: describe ML pipelines once, run them anywhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"mlops {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options of `mlops` itself (before any command)."""


app.add_typer(throttle_cli.app, name="throttle")
app.add_typer(infra_cli.app, name="infra")
app.add_typer(catalogue_cli.app, name="catalogue")
app.command()(server_cli.up)
app.command()(server_cli.worker)
app.command()(login_cli.login)
app.command()(login_cli.logout)
app.add_typer(remote_cli.app, name="runs")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(targets_cli.app, name="targets")
app.add_typer(llm_cli.app, name="llm")
app.add_typer(serve_cli.app, name="serve")
app.add_typer(monitoring_cli.app, name="monitoring")
app.add_typer(windmill_cli.app, name="windmill")
app.add_typer(n8n_cli.app, name="n8n")
app.command()(remote_cli.deploy)
app.command()(remote_cli.destroy)
app.command()(assist_cli.assist)

TargetArg = Annotated[
    str, typer.Argument(help="A spec file or folder (YAML/JSON), or a ref such as pipeline/iris-classifier")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Parameter override NAME=VALUE (repeatable)")
]
CatOpt = Annotated[
    list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue file or folder (repeatable)")
]
PipeOpt = Annotated[
    str | None, typer.Option("--pipeline", "-p", help="Which Pipeline/MetaPipeline of the file")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", "-t", help="Override the target provider (local, auto, ...)")
]


def _compile(
    target: str,
    sets: list[str] | None,
    catalogues: list[str] | None,
    pipeline: str | None,
    provider: str | None,
    as_json: bool,
    here: bool = False,
) -> Any:
    """The placed plan (SpecError's problems reported, exit 2); with `here`, every step must be placed on
    this machine (`mlops run`)."""
    from dataclasses import replace

    from mlops_nocode.cli.source import add_python_path, load_source, parse_sets, validate_all
    from mlops_nocode.providers.checks import remote_steps
    from mlops_nocode.runs.flow import placed_plan

    try:
        src = load_source(target, catalogues or [], pipeline)
        params = parse_sets(sets or [], src.root.spec.parameters)
        if src.docs:
            validate_all(src, params)
        launch = {"provider": provider, "options": {}} if provider else None
        plan = placed_plan(src.root, src.catalogue, params, launch)
        problems = remote_steps(plan) if here else []
        if here and any(s.runtime == "litellm" for s in plan.steps):
            from mlops_nocode.catalogue.home import mlops_home
            from mlops_nocode.integrations.litellm.preflight import route_problems

            problems += route_problems(plan, mlops_home())
        if problems:
            raise SpecError(problems)
    except SpecError as e:
        fail(e.problems, as_json)
    dirs = add_python_path(src.spec_dirs)
    return replace(plan, python_path=tuple(dirs))


@app.command()
def validate(
    target: TargetArg, catalogue: CatOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """Validate every document of a file (or a ref): schema, refs, parameters, types, cycles."""
    from mlops_nocode.cli.report import warn
    from mlops_nocode.cli.source import load_source, parse_sets, validate_all
    from mlops_nocode.compiler.check import warnings_of
    from mlops_nocode.providers.placement import placement_problems
    from mlops_nocode.spec import Playbook

    try:
        src = load_source(target, catalogue or [])
        params = parse_sets(set_ or [], src.root.spec.parameters)
        plans = validate_all(src, params, placement_problems)
    except SpecError as e:
        fail(e.problems, as_json)
    docs = src.docs or [src.root]
    n_pb = sum(isinstance(d, Playbook) for d in docs)
    warnings = warnings_of(docs, plans)
    if as_json:
        print(
            json.dumps(
                {
                    "status": "valid",
                    "documents": [str(d.ref) for d in docs],
                    "steps": sum(len(p.steps) for p in plans),
                    "warnings": [{"what": w.what, "where": w.where, "fix": w.fix} for w in warnings],
                }
            )
        )
        return
    warn(warnings)
    err.print(
        f"[green]✓[/] {len(docs)} document(s) valid ({n_pb} playbook(s), {len(plans)} pipeline(s) "
        f"compiling to {sum(len(p.steps) for p in plans)} step(s))"
        + (f", {len(warnings)} warning(s)" if warnings else "")
    )


@app.command()
def plan(
    target: TargetArg,
    set_: SetOpt = None,
    catalogue: CatOpt = None,
    pipeline: PipeOpt = None,
    provider: TargetOpt = None,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="FILE.json: write the plan there; a folder: plan.json and each deployment's bundle in it",
        ),
    ] = None,
    as_json: JsonOpt = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every step (big plans are summarised: first and last steps)")
    ] = False,
) -> None:
    """Compile, place and render: the plan, each deployment's bundle (the files that would be applied,
    the resources that would be created) and the estimated cost. Creates nothing."""
    from mlops_nocode.cli.plan_view import bundles_table, plan_view, write_bundles
    from mlops_nocode.runs.flow import render

    compiled = _compile(target, set_, catalogue, pipeline, provider, as_json)
    try:
        rendered = render(compiled)
    except SpecError as e:
        fail(e.problems, as_json)
    if out_file is not None and out_file.suffix == ".json":
        portable = compiled.to_text(out_file.absolute().parent)  # local folders relative to the file
        write_output(out_file, portable, "--out", as_json)
        err.print(f"[green]✓[/] plan written to {out_file}")
    elif out_file is not None:
        write_bundles(out_file, compiled, rendered, as_json)
        err.print(f"[green]✓[/] plan and {len(rendered.bundles)} bundle(s) written under {out_file}")
    if as_json:
        print(json.dumps(compiled.to_json() | rendered.to_json(), indent=2))
        return
    for part in plan_view(compiled, out.width, show_all):
        out.print(part, highlight=False)
    if any(b.provider != "local" for b in rendered.bundles):  # all local: nothing to provision
        out.print(bundles_table(rendered), highlight=False)


NoCache = Annotated[bool, typer.Option("--no-cache", help="Run every step even when a cached result exists")]
Parallel = Annotated[
    int | None, typer.Option("--parallel", "-j", min=1, help="Steps run at once (default: CPU count)")
]
Events = Annotated[
    str | None, typer.Option("--events", help="Also write events as JSON lines to FILE ('-' = stdout)")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show step logs")]


@app.command()
def run(
    target: TargetArg,
    set_: SetOpt = None,
    catalogue: CatOpt = None,
    pipeline: PipeOpt = None,
    provider: TargetOpt = None,
    as_json: JsonOpt = False,
    no_cache: NoCache = False,
    parallel: Parallel = None,
    events: Events = None,
    verbose: Verbose = False,
) -> None:
    """Compile and run a pipeline on this machine; progress on stderr, `--json` summary on stdout."""
    compiled = _compile(target, set_, catalogue, pipeline, provider, as_json, here=True)
    execute_plan(compiled, as_json, no_cache, parallel, events, verbose)


@app.command()
def execute(
    plan_file: Annotated[Path, typer.Argument(help="A plan JSON written by `mlops plan --out`")],
    as_json: JsonOpt = False,
    no_cache: NoCache = False,
    parallel: Parallel = None,
    events: Events = None,
    verbose: Verbose = False,
    report_to: Annotated[
        str | None,
        typer.Option(
            "--report-to",
            help="Gateway URL to report the run's events and end to, with the run token in MLOPS_RUN_TOKEN",
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            help="Run only the steps placed on this deployment (or these: NAME,NAME); inputs made "
            "elsewhere are awaited",
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="The run's id (with --deployment, without --report-to)")
    ] = None,
) -> None:
    """Run a compiled plan file (what remote targets run)."""
    from dataclasses import replace

    from mlops_nocode.cli.execute import Part
    from mlops_nocode.cli.source import add_python_path
    from mlops_nocode.compiler.plan import Plan, PlanError
    from mlops_nocode.providers.checks import check_placed
    from mlops_nocode.runs.flow import deployment_of, deployments, place

    try:
        compiled = Plan.load(plan_file)
    except PlanError as e:
        fail([Problem(str(e), str(plan_file), "write one with `mlops plan FILE --out PLAN.json`")], as_json)
    try:
        if any(s.placement is None for s in compiled.steps):
            compiled = place(compiled, None)
        names = sorted(d.name for d in deployments(compiled, "plan"))
    except SpecError as e:
        fail(e.problems, as_json)
    wanted = [n.strip() for n in deployment.split(",")] if deployment is not None else None
    for name in wanted or ():
        if name not in names:
            fix = f"give one of: {', '.join(names)} (several: NAME,NAME)"
            fail([Problem(f"the plan has no deployment {name[:60]!r}", "--deployment", fix)], as_json)
    # local steps against this machine, remote ones against their offer; with --deployment, its own only
    mine = tuple(s for s in compiled.steps if wanted is None or deployment_of(s) in wanted)
    problems = check_placed(replace(compiled, steps=mine))
    for name in wanted or ():
        problems += Part.unsupported(compiled, name)
    if problems:
        fail(problems, as_json)
    add_python_path([Path(p) for p in compiled.python_path if Path(p).is_dir()])
    part = Part.of(",".join(wanted), run_id, as_json) if wanted else None
    execute_plan(compiled, as_json, no_cache, parallel, events, verbose, report_to, part)


@app.command()
def schema(
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file")] = None,
) -> None:
    """Write the JSON Schema of the spec (for editors such as VSCode's YAML extension)."""
    from mlops_nocode.spec.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out_file is None:
        sys.stdout.write(text)
    else:
        write_output(out_file, text, "--out")
        err.print(f"[green]✓[/] JSON Schema written to {out_file}")


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    try:
        app()
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # the reader went away (`mlops ... | head`): not an error of the run
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
