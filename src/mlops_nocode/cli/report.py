"""How the CLI reports problems: located, with a fix, and exit code 2 with nothing written."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlops_nocode.catalogue.git import Conflict, Diverged
from mlops_nocode.spec import Problem, SpecError


class _Console(Console):
    """A console that, when its reader goes away (`mlops ... | head`), goes quiet instead of exiting."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())


err = _Console(stderr=True)
out = _Console()
MAX_SHOWN = 25
T = TypeVar("T")


def fail(problems: list[Problem], as_json: bool = False) -> NoReturn:
    """Report problems and exit 2; nothing has been written or run."""
    if as_json:
        print(json.dumps({"status": "invalid", "problems": SpecError(problems).to_json()}, indent=2))
    err.print(f"[red bold]✗ {len(problems)} problem(s)[/]")
    _show(problems, "[red]•[/]")
    raise typer.Exit(2)


def warn(warnings: list[Problem]) -> None:
    """Report warnings: located like problems, but nothing fails."""
    if warnings:
        err.print(f"[yellow bold]! {len(warnings)} warning(s)[/]")
        _show(warnings, "[yellow]![/]")


def _show(problems: list[Problem], bullet: str) -> None:
    for p in problems[:MAX_SHOWN]:  # where and fix quote the user's text: never read as markup
        err.print(f"{bullet} [bold]{escape(p.where or '(spec)')}[/]", highlight=False)
        err.print(f"  {p.what}", highlight=False, markup=False)
        if p.fix:
            err.print(f"  [cyan]fix:[/] {escape(p.fix)}", highlight=False)
    if len(problems) > MAX_SHOWN:
        err.print(f"... and {len(problems) - MAX_SHOWN} more (use --json to see them all)")


def write_output(path: Path, text: str, option: str, as_json: bool = False) -> None:
    """Write a file the user asked for, or fail with a located problem (no traceback)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(
            [
                Problem(
                    f"cannot write {path}: {e.strerror or e}",
                    option,
                    "give a writable file path (its folder must exist)",
                )
            ],
            as_json,
        )


def conflict(e: SpecError, as_json: bool = False) -> NoReturn:
    """Report a conflict (stale save, immutable version, used entry) or a divergence, and exit 1."""
    status = "diverged" if isinstance(e, Diverged) else "conflict"
    if as_json:
        print(json.dumps({"status": status, "problems": e.to_json()}, indent=2))
    err.print(f"[red bold]✗ {status}[/]")
    for p in e.problems:
        err.print(f"[red]•[/] [bold]{escape(p.where)}[/]", highlight=False)
        err.print(f"  {p.what}", highlight=False, markup=False)
        if p.fix:
            err.print(f"  [cyan]fix:[/] {escape(p.fix)}", highlight=False)
    raise typer.Exit(1)


def call(fn: Callable[[], T], as_json: bool = False) -> T:
    """Run a catalogue operation: conflicts and divergence exit 1, other problems exit 2, no traceback."""
    try:
        return fn()
    except (Conflict, Diverged) as e:
        conflict(e, as_json)
    except SpecError as e:
        fail(e.problems, as_json)
