"""`mlops infra ...`: the infrastructure terraform steps made on this machine (MLOPS_HOME): destroy it."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from mlops_nocode.cli.report import err

app = typer.Typer(help="Infrastructure made by terraform steps on this machine.", no_args_is_help=True)


@app.command()
def destroy(
    run_id: Annotated[str | None, typer.Argument(help="The run whose terraform steps made it")] = None,
    step: Annotated[str | None, typer.Argument(help="Only this step of the run (its id)")] = None,
    state: Annotated[str | None, typer.Option("--state", help="A shared state (`state: NAME`)")] = None,
) -> None:
    """Destroy what terraform steps of a run (or one step, or a shared state) created; secrets their
    variables took are read from the environment by name."""
    from mlops_nocode.catalogue.home import mlops_home
    from mlops_nocode.iac.terraform import TerraformError
    from mlops_nocode.runtime.executors.terraform import destroy_from_env, workdirs

    if (run_id is None) == (state is None):
        err.print("[red]✗[/] name a run (RUN_ID [STEP]) or a shared state (--state NAME), not both")
        raise typer.Exit(2)
    try:
        found = workdirs(mlops_home(), run_id, step, state)
    except ValueError as e:
        err.print(f"[red]✗[/] {e}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    failed = False
    for workdir in found:
        try:
            destroy_from_env(workdir, dict(os.environ), workdir / "destroy.log")
            err.print(f"[green]✓[/] destroyed {workdir}", highlight=False)
        except TerraformError as e:
            failed = True
            err.print(f"✗ {e.what} ({e.where}): {e.fix}", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)
