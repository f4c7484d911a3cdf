"""Running a compiled plan from the CLI: sinks, progress, summary, exit code."""

from __future__ import annotations

import json
import os
import sys
from typing import IO

import typer

from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.compiler import Plan
from mlops_nocode.spec import Problem


def execute_plan(
    plan: Plan, as_json: bool, no_cache: bool, parallel: int | None, events: str | None, verbose: bool
) -> None:
    """Run `plan` here with live progress; exit 0 succeeded, 1 failed, 130 cancelled."""
    from mlops_nocode.cli.progress import ConsoleProgress, outputs_table, summary_table
    from mlops_nocode.runtime.events import Fanout, JsonLines, Sink
    from mlops_nocode.runtime.runner import Runner
    from mlops_nocode.runtime.throttle import ThrottleConfigError, Throttler

    if events == "-" and as_json:
        fail(
            [
                Problem(
                    "--events - and --json both write to stdout",
                    "--events",
                    "write the events to a file (--events FILE), or drop --json",
                )
            ],
            as_json,
        )
    try:
        throttle = Throttler.from_env()
    except ThrottleConfigError as e:
        fail([Problem(str(e), "environment", "fix or unset that variable (see docs/THROTTLE.md)")], as_json)
    sinks: list[Sink] = []
    events_file: IO[str] | None = None
    if events == "-":
        sinks.append(JsonLines(sys.stdout))
    elif events:
        try:
            events_file = open(events, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as e:
            fail(
                [
                    Problem(
                        f"cannot write events to {events}: {e.strerror or e}",
                        "--events",
                        "give a writable file path (its folder must exist)",
                    )
                ],
                as_json,
            )
        sinks.append(JsonLines(events_file))
    try:
        runner = Runner(plan, use_cache=not no_cache, max_parallel=parallel, throttle=throttle)
        with ConsoleProgress(err, len(plan.steps), verbose) as progress:
            runner.sink = Fanout(progress, *sinks)
            result = runner.run()
    except OSError as e:
        fail(
            [
                Problem(
                    f"cannot write the run's files: {e.strerror or e} ({e.filename or 'MLOPS_HOME'})",
                    "MLOPS_HOME",
                    "point MLOPS_HOME at a writable folder with free space",
                )
            ],
            as_json,
        )
    finally:
        if events_file is not None:
            events_file.close()
    summary = result.summary()
    code = {"succeeded": 0, "failed": 1, "cancelled": 130}[result.status]
    try:
        if as_json:
            print(json.dumps(summary, indent=2, default=str))
        elif events != "-":
            out.print(summary_table(summary))
            if summary["outputs"]:
                out.print(outputs_table(summary["outputs"]))
        if code:
            err.print(f"[red]run {result.run_id} {result.status}[/] (logs: {result.run_dir}/steps)")
        sys.stdout.flush()
    except OSError:  # a reader that went away (`| head`) does not change the outcome of the run
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
    raise typer.Exit(code)
