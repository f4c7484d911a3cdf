"""`mlops serve list|stop`: the services that serve steps started on this machine (MLOPS_HOME/serving/)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlops_nocode.cli.report import err, out
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.home import mlops_home

app = typer.Typer(help="Services started by serve steps: list them, stop them.", no_args_is_help=True)

STYLES = {"healthy": "green", "starting": "yellow", "unhealthy": "red", "dead": "red"}


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every service with its state (health checked now), URL, run and step."""
    from mlops_nocode.runtime.supervise import check

    home = mlops_home()
    services = check(home)
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
        svc = sv.stop(home, n)
        if svc is None:
            known = ", ".join(s.name for s in sv.all_services(home)) or "none"
            err.print(f"[red]error:[/] no service {escape(n)!r} (running: {escape(known)})")
            raise typer.Exit(1)
        out.print(f"stopped {escape(n)} ({svc.url})")
    if all_ and not names:
        out.print("no services to stop")


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
