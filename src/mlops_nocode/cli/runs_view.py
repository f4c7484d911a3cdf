"""How `mlops runs` and `mlops deploy` show runs and events on the terminal (Rich), and live progress."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mlops_nocode.cli.progress import ConsoleProgress, outputs_table
from mlops_nocode.cli.report import err, out
from mlops_nocode.cli.tables import Cell, Col, fitted
from mlops_nocode.runtime.events import Event

STYLE = {"queued": "dim", "running": "cyan", "succeeded": "green", "failed": "red", "cancelled": "yellow"}


def stamp(t: float | None) -> str:
    """A UNIX time as local `YYYY-MM-DD HH:MM:SS` ('' for none)."""
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def duration(run: dict[str, Any]) -> str:
    """How long the run ran (so far, when it is still running)."""
    start = run.get("started_at")
    if not start:
        return ""
    end = run.get("finished_at") or time.time()
    return f"{end - start:.1f}s"


def status_text(status: str) -> Text:
    return Text(status, style=STYLE.get(status, ""))


def runs_table(page: dict[str, Any], width: int = 80) -> Table:
    """A page of runs, newest first, one line each (run ids whole: they are what `runs show` takes)."""
    items = page["items"]
    first = page["offset"] + 1 if items else 0
    title = f"runs {first}-{page['offset'] + len(items)} of {page['total']}" if items else "no runs"
    cols = [
        Col("id", weight=3.0),
        Col("pipeline", middle=True, weight=1.5),
        Col("status"),
        Col("created"),
        Col("duration", justify="right", min_terminal=90),
        Col("details", min_terminal=120),
    ]
    rows: list[list[Cell]] = []
    for r in items:
        created = stamp(r["created_at"]) if width >= 110 else stamp(r["created_at"])[5:16]
        details = " ".join((r.get("details") or "").split())
        rows.append([r["id"], r["pipeline"], status_text(r["status"]), created, duration(r), Text(details)])
    return fitted(title, cols, rows, width)


def show_run(run: dict[str, Any]) -> None:
    """One run: its fields, then its outputs."""
    t = Table(title=f"run {run['id']}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    rows: list[tuple[str, str | Text]] = [
        ("pipeline", run["pipeline"]),
        ("status", status_text(run["status"])),
        ("details", run.get("details") or ""),
        ("parameters", json.dumps(run.get("parameters") or {})),
        ("target", json.dumps(run.get("target")) if run.get("target") else "(the pipeline's)"),
        ("steps", ", ".join(run.get("steps") or [])),
        ("created", stamp(run.get("created_at"))),
        ("started", stamp(run.get("started_at"))),
        ("finished", stamp(run.get("finished_at"))),
        ("duration", duration(run)),
        ("worker", run.get("worker_id") or ""),
        ("attempts", str(run.get("attempts", 0))),
        ("retry of", run.get("retry_of") or ""),
    ]
    for name, value in rows:
        t.add_row(name, value if isinstance(value, Text) else Text(value))
    out.print(t)
    if run.get("outputs"):
        out.print(outputs_table(run["outputs"]))


def event_line(e: dict[str, Any]) -> Text:
    """One event as a terminal line: log lines as `step | line`, others as `type step: data`."""
    when = datetime.fromtimestamp(e.get("ts") or 0).strftime("%H:%M:%S")
    data = e.get("data") or {}
    step = e.get("step") or ""
    if e.get("type") == "log":
        return Text(f"{when} {step} | {data.get('line', '')}")
    summary = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in data.items())
    if len(summary) > 160:
        summary = summary[:159] + "…"
    line = Text(f"{when} ")
    line.append(str(e.get("type")), style="bold")
    line.append(f" {step}".rstrip() + (f": {summary}" if summary else ""))
    return line


def events_table(events: list[dict[str, Any]], run_id: str, width: int = 80) -> Table:
    """Events of a run, one line each (the data shortened to fit; `--json` has it whole)."""
    cols = [
        Col("seq", justify="right"),
        Col("time", min_terminal=100),
        Col("type"),
        Col("step", middle=True),
        Col("data", weight=2.0),
    ]
    rows: list[list[Cell]] = []
    for e in events:
        data = json.dumps(e.get("data") or {}, default=str)
        rows.append([str(e["seq"]), stamp(e["ts"]), e["type"], e.get("step") or "", Text(data[:1000])])
    return fitted(f"events of run {run_id}", cols, rows, width)


def watch(run: dict[str, Any], stream: Iterator[tuple[str, Any]], verbose: bool) -> dict[str, Any]:
    """Draw the run's progress from its event stream until its `end` event; returns that event's data."""
    end: dict[str, Any] = {"status": "unknown", "details": None}
    with ConsoleProgress(err, total=len(run.get("steps") or []), verbose=verbose) as progress:
        for kind, data in stream:
            if kind == "end":
                end = data if isinstance(data, dict) else end
                break
            if isinstance(data, dict) and "type" in data:
                progress(
                    Event(str(data["type"]), run["id"], data.get("step"), data.get("data") or {}, data["ts"])
                )
    return end


def finished(run: dict[str, Any], as_json: bool = False) -> None:
    """The closing line of a watched run on stderr, and its outputs table on stdout when it succeeded
    (not with `--json`: stdout then holds only the run's JSON, which has the outputs)."""
    status = run["status"]
    if status == "succeeded":
        if run.get("outputs") and not as_json:
            out.print(outputs_table(run["outputs"]))
        err.print(f"[green]✓[/] run {run['id']} succeeded in {duration(run)}", highlight=False)
    else:
        why = f": {escape(run['details'])}" if run.get("details") else ""
        err.print(f"[red]✗[/] run {run['id']} {status}{why}", highlight=False)
