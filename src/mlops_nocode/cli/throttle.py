"""`mlops throttle ...`: wait until the machine is idle enough (then run a command), or show its state.

Settings come from the environment (CPU_THRESHOLD, LOAD_AVG_THRESHOLD, CHECK_INTERVAL, MAX_WAIT_TIME,
THROTTLE_DISABLE, LOG_LEVEL); see docs/THROTTLE.md.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops_nocode.runtime.throttle import ThrottleConfigError, Throttler

app = typer.Typer(
    help="CPU throttler: wait while CPU usage or the load average is above its threshold.",
    no_args_is_help=True,
)
_err = Console(stderr=True)
_out = Console()


class _ConsoleHandler(logging.Handler):
    """Prints the throttler's log records on a Rich console (the one a live progress display uses)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            style = "red" if record.levelno >= logging.WARNING else "yellow"
            self.console.print(f"[{style}]⏸ throttle[/] {escape(record.getMessage())}", highlight=False)
        except Exception:  # a log line must never break a run
            self.handleError(record)


_handler: _ConsoleHandler | None = None


def show_logs(console: Console) -> None:
    """Print the `mlops.throttle` logger's records on `console`; which records is set by LOG_LEVEL (the
    throttler sets its logger's level): DEBUG every reading, INFO waits and resumes, WARNING a wait that
    reached MAX_WAIT_TIME, ERROR nothing."""
    global _handler
    if _handler is None:
        _handler = _ConsoleHandler(console)
        logging.getLogger("mlops.throttle").addHandler(_handler)
    _handler.console = console


def _throttler() -> Throttler:
    try:
        throttler = Throttler.from_env()
    except ThrottleConfigError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    show_logs(_err)
    throttler.warm_up()  # a fresh process has no CPU reading yet; take one over CHECK_INTERVAL
    return throttler


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def wait(
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run once the machine is idle enough (after `--`).")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="Name for the log lines (e.g. a step id).")] = "",
) -> None:
    """Wait while the machine is busy (at most MAX_WAIT_TIME), then run COMMAND and exit with its code.

    Example: mlops throttle wait -- python train.py --epochs 3
    """
    throttler = _throttler()
    throttler.wait(label or (command[0] if command else ""))  # what it did is logged (LOG_LEVEL)
    if not command:
        raise typer.Exit(0)
    try:
        code = subprocess.run(command, check=False).returncode  # argv list: no shell
    except FileNotFoundError:
        _err.print(f"[red]error:[/red] command not found: {escape(command[0])}")
        raise typer.Exit(127) from None
    except OSError as exc:  # not executable, a folder, not a program (exec format error)...
        why = exc.strerror or type(exc).__name__
        _err.print(f"[red]error:[/red] cannot run {escape(command[0])}: {escape(why)}")
        raise typer.Exit(126) from None
    if code < 0:  # killed by a signal: report it as a shell does
        _err.print(f"[red]error:[/red] {escape(command[0])} killed by {signal.Signals(-code).name}")
        code = 128 - code
    raise typer.Exit(code)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show current CPU usage, load averages, thresholds and whether `wait` would wait now."""
    st = _throttler().status()
    if as_json:
        typer.echo(json.dumps(asdict(st), indent=2))
        return
    table = Table(title="CPU throttler")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_row("CPU (system-wide)", f"{st.cpu:.1f}%", f"{st.cpu_threshold:g}%")
    table.add_row("load average 1 min", f"{st.load1:.2f}", "")
    table.add_row("load average 5 min", f"{st.load5:.2f}", f"{st.load_avg_threshold:g}")
    table.add_row("load average 15 min", f"{st.load15:.2f}", "")
    _out.print(table)
    if st.disabled:
        _out.print("would wait: [bold]no[/bold] (THROTTLE_DISABLE is set)")
    elif st.would_wait:
        _out.print(f"would wait: [bold red]yes[/bold red] ({escape(st.reason)})")
    else:
        _out.print("would wait: [bold green]no[/bold green]")


if __name__ == "__main__":
    app()
