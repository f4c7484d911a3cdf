"""Running a compiled plan from the CLI: sinks, progress, summary, exit code."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import typer

from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.compiler import Plan
from mlops_nocode.spec import Problem

if TYPE_CHECKING:
    from mlops_nocode.runs.reporter import GatewayReporter
    from mlops_nocode.runtime.redaction import Redactor
    from mlops_nocode.runtime.sandbox import Confinement
    from mlops_nocode.runtime.state import RunResult


@dataclass(frozen=True, slots=True)
class Part:
    """A Runner that runs one deployment's steps of a run, or several's (`mlops execute --deployment
    NAME[,NAME]`: a comma-separated list, as a worker runs its local and ray deployments)."""

    deployment: str
    run_id: str | None

    @staticmethod
    def of(deployment: str, run_id: str | None, as_json: bool) -> Part:
        from mlops_nocode.runtime.handoff import RUN_ID

        if run_id is not None and not RUN_ID.match(run_id):
            fix = "letters, digits, '.', '_' and '-', at most 64, as the gateway's run ids"
            fail([Problem(f"invalid run id {run_id!r}", "--run-id", fix)], as_json)
        return Part(deployment, run_id)

    @staticmethod
    def unsupported(plan: Plan, deployment: str) -> list[Problem]:
        """The steps of `deployment` whose runtime this machine's Runner cannot run."""
        from mlops_nocode.runs.flow import deployment_of
        from mlops_nocode.runtime.executors import known

        runs = known()
        return [
            Problem(
                f"step {s.id} uses runtime {s.runtime!r}, which this Runner cannot run",
                f"{s.source} > runtime",
                f"run it where {s.runtime} runs (this Runner runs: {', '.join(sorted(runs))})",
            )
            for s in plan.steps
            if deployment_of(s) == deployment and s.runtime not in runs
        ]


def execute_plan(
    plan: Plan,
    as_json: bool,
    no_cache: bool,
    parallel: int | None,
    events: str | None,
    verbose: bool,
    report_to: str | None = None,
    part: Part | None = None,
) -> None:
    """Run `plan` here with live progress; exit 0 succeeded, 1 failed, 130 cancelled. With `report_to`
    (a gateway URL) the run's events and end are reported there with the run token in MLOPS_RUN_TOKEN."""
    from mlops_nocode.cli.progress import ConsoleProgress, outputs_table, summary_table
    from mlops_nocode.cli.throttle import show_logs
    from mlops_nocode.runtime.events import Fanout, JsonLines, Sink
    from mlops_nocode.runtime.limits import LimitsConfigError, load_limits
    from mlops_nocode.runtime.runner import Runner
    from mlops_nocode.runtime.s3store import StoreError
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
    try:
        limits = load_limits()
    except LimitsConfigError as e:
        fail([Problem(str(e), "environment", "fix or unset that variable (see docs/STEPS.md)")], as_json)
    show_logs(err)  # the throttler's log lines (LOG_LEVEL) say when and why steps wait
    confinement = _confinement(as_json)
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
    run_id, token = _reported_run(as_json) if report_to else (None, "")
    if part is not None and run_id is None:
        run_id = part.run_id
        if run_id is None:
            fix = "give the run's id with --run-id, or report to the gateway with --report-to"
            fail([Problem("--deployment needs the run's id", "--deployment", fix)], as_json)
    reporter = None
    try:
        runner = Runner(
            plan,
            run_id=run_id,
            use_cache=not no_cache,
            max_parallel=parallel,
            throttle=throttle,
            limits=limits,
            sandbox=confinement,
            **_part(part, run_id),
        )
        if report_to and run_id:
            from mlops_nocode.runs.reporter import GatewayReporter

            reporter = GatewayReporter(report_to, run_id, token, runner.cancel, append=part is not None)
            sinks.append(reporter)
            reporter.start()
        with ConsoleProgress(
            err, len(runner.states) - len(runner.foreign), verbose, show_throttle=False
        ) as progress:
            runner.sink = Fanout(progress, *sinks)
            result = runner.run()
    except StoreError as e:
        fail([e.problem], as_json)
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
        if reporter is not None:
            reporter.close()
    summary = result.summary()
    code = {"succeeded": 0, "failed": 1, "cancelled": 130}[result.status]
    if reporter is not None and not _report_end(reporter, plan, result, runner.redactor):
        code = code or 1
    try:
        if as_json:
            print(json.dumps(summary, indent=2, default=str))
        elif events != "-":
            out.print(summary_table(summary, out.width))
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


def _part(part: Part | None, run_id: str | None) -> dict[str, Any]:
    """The Runner's arguments for one deployment's part of a run: its steps, the shared step results."""
    if part is None or run_id is None:
        return {}
    from mlops_nocode.runtime.handoff import step_results
    from mlops_nocode.runtime.home import mlops_home
    from mlops_nocode.settings import Settings

    home = mlops_home()
    return {
        "deployment": part.deployment.split(","),
        "results": step_results(home),
        "run_dir": home / "runs" / f"{run_id}.{part.deployment.replace(',', '+')}",
        "input_wait": Settings().deployment_input_wait,
    }


def _confinement(as_json: bool) -> Confinement:
    """STEP_SANDBOX checked against this kernel; a warning when `auto` finds no Landlock here."""
    from mlops_nocode.runtime.sandbox import SandboxError, resolve

    try:
        conf = resolve()
    except SandboxError as e:
        fail([Problem(str(e), "STEP_SANDBOX", "see the step sandbox in docs/STEPS.md")], as_json)
    if conf.settings.step_sandbox == "auto" and not conf.confined:
        err.print(
            f"[yellow]warning:[/] steps run unconfined ({'; '.join(conf.notes)}); set STEP_SANDBOX=none "
            "to silence this",
            soft_wrap=True,
        )
    return conf


def _reported_run(as_json: bool) -> tuple[str, str]:
    """The run token from MLOPS_RUN_TOKEN (taken out of the environment the steps inherit) and the run
    id it names (checked by the gateway, not here)."""
    import jwt

    token = os.environ.pop("MLOPS_RUN_TOKEN", "")
    try:
        run_id = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        run_id = None
    if not isinstance(run_id, str) or not run_id:
        fail(
            [
                Problem(
                    "--report-to needs the run token of the claim in MLOPS_RUN_TOKEN"
                    + (" (the value there is not a run token)" if token else ""),
                    "MLOPS_RUN_TOKEN",
                    "the worker that claimed the run sets it; it is never passed on the command line",
                )
            ],
            as_json,
        )
    return run_id, token


def _report_end(reporter: GatewayReporter, plan: Plan, result: RunResult, redactor: Redactor) -> bool:
    """Record the end at the gateway; False (with a message) when it could not be recorded."""
    from mlops_nocode.runs.artifacts import records
    from mlops_nocode.runs.worker import failure_details

    if reporter.lost:
        err.print(f"[red]the gateway gave run {result.run_id} to another worker: its end is not recorded[/]")
        return False
    details = "cancelled on request" if reporter.cancel_requested else failure_details(result)
    end = {"status": result.status, "details": details, "outputs": result.outputs}
    if reporter.finish(end | {"artifacts": records(plan, result, redactor)}):
        return True
    err.print(f"[red]could not record the end of run {result.run_id} at the gateway[/]")
    return False
