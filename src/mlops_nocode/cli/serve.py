"""`mlops serve list|stop`: the services that serve steps started on this machine (MLOPS_HOME/serving/)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlops_nocode.cli.report import err, out
from mlops_nocode.runtime.home import mlops_home

app = typer.Typer(help="Services started by serve steps: list them, stop them.", no_args_is_help=True)

STYLES = {"healthy": "green", "starting": "yellow", "unhealthy": "red", "dead": "red"}


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every service with its state (health checked now), URL, run and step."""
    from mlops_nocode.runtime import services as sv
    from mlops_nocode.runtime.supervise import check

    home = mlops_home()
    try:
        services = check(home)
    except sv.ServiceError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps([s.public(home) for s in services], indent=2))
        return
    if not services:
        out.print("no services (a serve step starts one; `keep: true` keeps it after its run)")
        return
    table = Table("name", "state", "url", "run", "step", "kept", "up for", "restarts")
    for s in services:
        style = STYLES.get(s.state, "white")
        table.add_row(
            escape(s.name),
            f"[{style}]{escape(s.state)}[/]",
            s.url,
            escape(s.run),
            escape(s.step),
            "yes" if s.keep else "no",
            _age(time.time() - s.started),
            str(s.restarts),
        )
    out.print(table)


@app.command()
def stop(
    name: Annotated[str | None, typer.Argument(help="The service to stop.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every service.")] = False,
) -> None:
    """Stop a service (SIGTERM to its processes, SIGKILL after SERVE_STOP_GRACE seconds) and remove its
    record and its model route."""
    from mlops_nocode.runtime import services as sv

    home = mlops_home()
    if all_ == (name is not None):
        err.print("[red]error:[/] give a service NAME or --all (see `mlops serve list`)")
        raise typer.Exit(2)
    names = [s.name for s in sv.all_services(home)] if all_ else [str(name)]
    if name is not None:
        try:
            sv.check_name(name)
        except sv.ServiceError as e:
            err.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(2) from None
    for n in names:
        try:
            svc = sv.stop(home, n)
        except sv.ServiceError as e:
            err.print(f"[red]error:[/] {escape(str(e))}")
            raise typer.Exit(2) from None
        if svc is None:
            known = ", ".join(s.name for s in sv.all_services(home)) or "none"
            err.print(f"[red]error:[/] no service {escape(n)!r} (running: {escape(known)})")
            raise typer.Exit(1)
        out.print(f"stopped {escape(n)} ({svc.url})")
    if all_ and not names:
        out.print("no services to stop")


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="The service.")],
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=10000, help="How many lines.")] = 50,
) -> None:
    """The last lines of a service's log (MLOPS_HOME/serving/NAME/service.log, secrets masked)."""
    from mlops_nocode.runtime import services as sv
    from mlops_nocode.runtime.attempt import tail

    home = mlops_home()
    try:
        path = sv.log_path(home, name)
    except sv.ServiceError as e:
        err.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2) from None
    if not path.is_file():
        known = ", ".join(s.name for s in sv.all_services(home)) or "none"
        err.print(f"[red]error:[/] no log of service {escape(name)!r} (running: {escape(known)})")
        raise typer.Exit(1)
    for line in tail(path, lines):
        print(line)


@app.command("k8s")
def k8s(
    target: Annotated[str, typer.Argument(help="A spec file or folder, or a ref such as pipeline/NAME")],
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", help="Parameter NAME=VALUE")] = None,
    catalogues: Annotated[list[str] | None, typer.Option("--catalogue", "-c", help="Extra catalogue")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", "-p", help="Which pipeline")] = None,
    namespace: Annotated[str, typer.Option(help="The namespace of the objects.")] = "mlops-serving",
    image: Annotated[str | None, typer.Option(help="The image (default: RUNNER_IMAGE / _CUDA).")] = None,
    inputs_claim: Annotated[str, typer.Option(help="PVC holding the inputs")] = "mlops-serve-inputs",
) -> None:
    """Print the Kubernetes objects (ConfigMap, Deployment, Service) of the serve steps of a pipeline, for
    review or `kubectl apply -f -` (render-only: the K3s Runner does not start serve steps yet)."""
    from mlops_nocode.cli.report import fail
    from mlops_nocode.cli.source import load_source, parse_sets
    from mlops_nocode.compiler import compile_plan
    from mlops_nocode.providers.k3s_serve import serve_objects, serve_yaml
    from mlops_nocode.settings import Settings
    from mlops_nocode.spec import Problem, SpecError

    try:
        src = load_source(target, catalogues or [], pipeline)
        params = parse_sets(sets or [], src.root.spec.parameters)
        plan = compile_plan(src.root, src.catalogue, params)
    except SpecError as e:
        fail(e.problems)
    steps = [s for s in plan.steps if s.runtime == "serve"]
    if not steps:
        fail([Problem(f"{plan.root} has no serve step", target, "use a playbook with runtime: serve")])
    objects = []
    settings = Settings()
    for step in steps:
        gpu = int((step.resources or {}).get("gpu", 0) or 0)
        img = image or (settings.runner_image_cuda if gpu else settings.runner_image)
        objects += serve_objects(step, namespace=namespace, image=img, inputs_claim=inputs_claim)
    print(serve_yaml(objects), end="")


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
