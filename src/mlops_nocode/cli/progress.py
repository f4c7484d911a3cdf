"""Rich rendering of run events on the terminal (stderr), and the final summary table."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from mlops_nocode.cli.tables import MAX_ROWS, Cell, Col, fitted, summarised
from mlops_nocode.runtime.events import Event

_MARK = {
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "skipped": "[yellow]↷[/]",
    "cancelled": "[yellow]■[/]",
}


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    parts = []
    for out, values in metrics.items():
        if isinstance(values, dict):
            shown = list(values.items())[:4]
            parts.append(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown))
        else:
            parts.append(f"{out}={values}")
    return escape("  ".join(parts))


class ConsoleProgress:
    """A sink that draws a progress bar and one line per finished step. Use as a context manager."""

    def __init__(
        self, console: Console, total: int, verbose: bool = False, show_throttle: bool = True
    ) -> None:
        self.console = console
        self.verbose = verbose
        self.show_throttle = show_throttle  # off where the throttler's own log lines are shown instead
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("starting", total=total)
        self.running: set[str] = set()
        self.broken = False

    def __enter__(self) -> ConsoleProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.progress.stop()

    def _describe(self) -> None:
        names = sorted(self.running)
        desc = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
        self.progress.update(self.task, description=f"running {desc}" if names else "waiting")

    def __call__(self, e: Event) -> None:
        """Draw one event; a terminal that went away (closed pipe) never stops the run."""
        if self.broken:
            return
        try:
            self._draw(e)
        except OSError:
            self.broken = True

    def _draw(self, e: Event) -> None:
        p, step = self.progress, escape(e.step or "")
        d: dict[str, Any] = {k: escape(v) if isinstance(v, str) else v for k, v in e.data.items()}
        if e.type == "run.started":
            p.console.print(f"[bold]run {e.run_id}[/] {d.get('pipeline')} ({d.get('steps')} steps)")
        elif e.type == "step.started":
            self.running.add(step)
            self._describe()
        elif e.type == "step.finished":
            self.running.discard(step)
            p.advance(self.task)
            tag = " [dim](cached)[/]" if d.get("cached") else ""
            p.console.print(
                f"{_MARK['succeeded']} {step} [dim]{d.get('duration', 0):.2f}s[/]{tag} "
                f"{_fmt_metrics(d.get('metrics') or {})}"
            )
            self._describe()
        elif e.type == "step.failed":
            self.running.discard(step)
            if d.get("final"):
                p.advance(self.task)
            retry = "" if d.get("final") else " [yellow](will retry)[/]"
            p.console.print(f"{_MARK['failed']} {step} attempt {d.get('attempt')}: {d.get('error')}{retry}")
            self._describe()
        elif e.type in ("step.skipped", "step.cancelled"):
            p.advance(self.task)
            mark = _MARK["skipped" if e.type == "step.skipped" else "cancelled"]
            p.console.print(f"{mark} {step} {d.get('reason', e.type.split('.')[1])}")
        elif e.type == "throttle" and self.show_throttle:
            before = step or f"{d.get('count', 0)} step(s)"
            p.console.print(
                f"[yellow]⏸[/] throttled {d.get('waited', 0):.2f}s before {before}: {d.get('reason')}"
            )
        elif e.type == "step.waiting":  # for GPUs held by other steps (docs/GPU.md)
            p.console.print(f"[yellow]⏸[/] {step} {d.get('reason')}")
        elif e.type == "log" and self.verbose:
            p.console.print(Text(f"{e.step} | {e.data.get('line')}", style="dim"), highlight=False)


def summary_table(summary: dict[str, Any], width: int = 80) -> Table:
    """The steps of a finished run with status (`cached` for a step reused from the cache), duration and
    attempts, one line each. Past MAX_ROWS steps: the steps that did not succeed first, the first and
    last rows of the rest, and a count per status below."""
    steps = summary["steps"]
    rows: list[list[Cell]] = []
    for sid, s in steps.items():
        status = "cached" if s.get("cached") else s["status"]
        rows.append([sid, status, f"{s['duration']:.2f}s", str(s["attempts"])])
    caption = None
    if len(rows) > MAX_ROWS:
        rows.sort(key=lambda r: r[1] in ("succeeded", "cached"))  # the others first
        counts = Counter("cached" if s.get("cached") else s["status"] for s in steps.values())
        rows = summarised(rows, False, "steps")
        tally = ", ".join(f"{n:,} {status}" for status, n in counts.most_common())
        caption = f"{len(steps):,} steps: {tally} (--json lists every step)"
    cols = [
        Col("step", middle=True, weight=2.0),
        Col("status"),
        Col("duration", justify="right"),
        Col("attempts", justify="right", min_terminal=60),
    ]
    return fitted(f"run {summary['run_id']}: {summary['status']}", cols, rows, width, caption)


def _number(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4f}"
    return str(int(v))


def outputs_table(outputs: dict[str, Any], width: int = 160) -> Table:
    """The pipeline's outputs: values (metrics shown one per line) or artifact paths."""
    t = Table(title="outputs", show_header=True)
    t.add_column("output", style="bold")
    t.add_column("value", overflow="fold")
    for name, value in outputs.items():
        if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
            text = "\n".join(f"{k} = {_number(v)}" for k, v in value.items())
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value)
            text = text if len(text) <= width else text[: width - 1] + "…"
        t.add_row(Text(name), Text(text))
    return t
