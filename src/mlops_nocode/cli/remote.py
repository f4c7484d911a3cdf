"""`mlops runs list|show|logs|events|cancel|retry` and `mlops deploy`: the gateway's runs, from the CLI.

They use the credential `mlops up` or `mlops login` stored (MLOPS_URL / MLOPS_TOKEN override it). `--json`
prints the gateway's answers on stdout; otherwise Rich tables. Exit codes: 0 done, 1 a watched run did
not succeed, 2 the request was refused or the gateway unreachable (with what, where and the fix), 130
stopped watching (the run goes on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlops_nocode.cli import runs_view as view
from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.spec import Problem, SpecError

if TYPE_CHECKING:  # httpx is imported only by the commands that talk to a gateway
    from mlops_nocode.cli.gateway import Gateway

app = typer.Typer(
    help="Runs on the gateway (uses the credential of `mlops up` / `mlops login`).", no_args_is_help=True
)

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RunArg = Annotated[str, typer.Argument(help="The run id (see `mlops runs list`)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
WaitOpt = Annotated[
    bool,
    typer.Option("--wait", "-w", help="Show live progress until the run ends; exit 1 unless it succeeded"),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="With --wait: show step logs")]


def _client(as_json: bool) -> Gateway:
    from mlops_nocode.cli.gateway import Gateway, resolve_credential

    return Gateway(resolve_credential(as_json), as_json)


def _wait(gw: Gateway, run: dict[str, Any], as_json: bool, verbose: bool) -> None:
    """Follow the run to its end; print it (`--json`: the final run) and exit 1 unless it succeeded."""
    try:
        view.watch(run, gw.events(run["id"]), verbose)
    except KeyboardInterrupt:
        err.print(
            f"stopped watching; run {run['id']} goes on: `mlops runs logs {run['id']} --follow`, "
            f"`mlops runs cancel {run['id']}`",
            highlight=False,
        )
        raise typer.Exit(130) from None
    final: dict[str, Any] = gw.call("GET", f"/api/v1/runs/{run['id']}")
    if as_json:
        print(json.dumps(final, indent=2))
    view.finished(final, as_json)
    if final["status"] != "succeeded":
        raise typer.Exit(1)


@app.command("list")
def list_runs(
    status: Annotated[
        str | None, typer.Option("--status", help="queued, running, succeeded, failed or cancelled")
    ] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", "-p", help="Pipeline ref prefix")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="Runs per page")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (newest first)")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """The gateway's runs, newest first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    params |= {k: v for k, v in {"status": status, "pipeline": pipeline}.items() if v}
    with _client(as_json) as gw:
        page = gw.call("GET", "/api/v1/runs", params=params)
    if as_json:
        print(json.dumps(page, indent=2))
    else:
        out.print(view.runs_table(page, out.width))


@app.command()
def show(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """One run: status, details, parameters, target, steps, times, outputs."""
    with _client(as_json) as gw:
        run = gw.call("GET", f"/api/v1/runs/{run_id}")
    if as_json:
        print(json.dumps(run, indent=2))
    else:
        view.show_run(run)


@app.command()
def events(
    run_id: RunArg,
    after: Annotated[int, typer.Option("--after", min=0, help="Only events after this seq")] = 0,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000)] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """The run's events so far (seq, time, type, step, data)."""
    with _client(as_json) as gw:
        found = gw.call("GET", f"/api/v1/runs/{run_id}/events", params={"after": after, "limit": limit})
    if as_json:
        print(json.dumps(found, indent=2))
    else:
        out.print(view.events_table(found, run_id, out.width))


@app.command()
def logs(
    run_id: RunArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream live until the run ends")] = False,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this event type, e.g. log or step.failed")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON event per line on stdout, then an end line if the run ended"),
    ] = False,
) -> None:
    """The run's log lines and events; `--follow` streams them (Server-Sent Events) until it ends.

    Once the run has ended, the last line (`--json`: `{"type": "end", "data": {"status", "details"}}`; else
    on stderr) gives its final status; without `--follow`, a run still going has no end line."""
    _check_type(type_, as_json)
    with _client(as_json) as gw:
        if follow:
            for kind, data in gw.events(run_id, only=type_):
                if kind == "end":
                    _print_end(run_id, data, as_json)
                elif isinstance(data, dict):
                    _print_event(data, as_json)
            return
        # the run's state first: if it had ended then, every one of its events is stored already
        run: dict[str, Any] = gw.call("GET", f"/api/v1/runs/{run_id}")
        after = 0
        while True:
            params: dict[str, Any] = {"after": after, "limit": 1000}
            page: list[dict[str, Any]] = gw.call("GET", f"/api/v1/runs/{run_id}/events", params=params)
            for e in page:
                if type_ is None or e["type"] == type_:
                    _print_event(e, as_json)
            if len(page) < 1000:
                break
            after = page[-1]["seq"]
        if run["status"] in TERMINAL:
            _print_end(run_id, {"status": run["status"], "details": run.get("details")}, as_json)


def _check_type(type_: str | None, as_json: bool) -> None:
    """`--type` must name an event type (a typo would otherwise silently show nothing)."""
    from mlops_nocode.runtime.events import EVENT_TYPES

    if type_ is not None and type_ not in EVENT_TYPES:
        fail(
            [
                Problem(
                    f"unknown event type {type_!r}",
                    "--type",
                    f"use one of {', '.join(sorted(EVENT_TYPES))}",
                )
            ],
            as_json,
        )


def _print_end(run_id: str, data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"type": "end", "data": data}), flush=True)
    else:
        status = data.get("status") if isinstance(data, dict) else data
        err.print(f"run {run_id} {status}", highlight=False)


def _print_event(e: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(e, default=str), flush=True)
    else:
        out.print(view.event_line(e), highlight=False, soft_wrap=True)


@app.command()
def cancel(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """Cancel a queued or running run (a running one stops its steps)."""
    with _client(as_json) as gw:
        run = gw.call("POST", f"/api/v1/runs/{run_id}/cancel")
    if as_json:
        print(json.dumps(run, indent=2))
    else:
        what = "cancelled" if run["status"] == "cancelled" else "cancel requested (its steps are stopping)"
        err.print(f"[green]✓[/] run {run_id}: {what}", highlight=False)


def destroy(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """Tear down everything a run provisioned (a running run is cancelled first); always possible."""
    with _client(as_json) as gw:
        deployments = gw.call("POST", f"/api/v1/runs/{run_id}/destroy")
    if as_json:
        print(json.dumps(deployments, indent=2))
        return
    if not deployments:
        err.print(f"[green]✓[/] run {run_id} provisioned nothing", highlight=False)
    for d in deployments:
        ok = d["status"] == "destroyed"
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        why = "" if ok else f": {d['status']}, {d['details'] or 'not destroyed'} (run it again)"
        err.print(f"{mark} run {run_id}, deployment {d['name']} ({d['provider']}){why}", highlight=False)
    if any(d["status"] != "destroyed" and d["provisioned"] for d in deployments):
        raise typer.Exit(1)


@app.command()
def retry(
    run_id: RunArg, wait: WaitOpt = False, verbose: VerboseOpt = False, as_json: JsonOpt = False
) -> None:
    """Run the same spec, parameters and target again (finished steps are reused from the cache)."""
    with _client(as_json) as gw:
        run = gw.call("POST", f"/api/v1/runs/{run_id}/retry")
        if not wait:
            _queued(run, as_json)
            return
        err.print(f"run {run['id']} queued (retry of {run_id})", highlight=False)
        _wait(gw, run, as_json, verbose)


def _queued(run: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(run, indent=2))
        return
    again = f", retry of {run['retry_of']}" if run.get("retry_of") else ""
    err.print(
        f"[green]✓[/] run {run['id']} queued: {run['pipeline']} ({len(run['steps'])} steps{again}); "
        f"follow it with `mlops runs logs {run['id']} --follow`",
        highlight=False,
        soft_wrap=True,
    )


def _pipeline(target: str, as_json: bool) -> str | list[Any]:
    """A ref as it is, or the documents of a spec file or folder (the gateway runs the last pipeline)."""
    from mlops_nocode.spec.loader import iter_spec_files
    from mlops_nocode.spec.refs import Ref, RefError
    from mlops_nocode.spec.yamlio import parse_texts

    path = Path(target)
    if not path.exists():
        try:
            Ref.parse(target)
        except RefError as e:
            fix = "give a spec file or folder, or a ref such as pipeline/iris-classifier"
            fail([Problem(f"{target!r} is neither a file nor a ref: {e}", "REF|FILE", fix)], as_json)
        return target
    docs: list[Any] = []
    try:
        for f in iter_spec_files([path]):
            docs.extend(parse_texts(f.read_text(encoding="utf-8"), str(f)))
    except SpecError as e:
        fail(e.problems, as_json)
    except (OSError, UnicodeDecodeError) as e:
        fail(
            [Problem(f"cannot read {path}: {e}", str(path), "give a readable UTF-8 YAML/JSON file")], as_json
        )
    if not docs:
        fail([Problem("no spec documents found", str(path), "give a YAML/JSON spec file")], as_json)
    _warn_local_modules(docs, path if path.is_dir() else path.parent)
    return docs


def _warn_local_modules(docs: list[Any], folder: Path) -> None:
    """Python steps whose module sits beside the spec: `mlops run` imports it from there, the gateway
    cannot (only the documents are sent)."""
    for doc in docs:
        spec = doc.get("spec") if isinstance(doc, dict) else None
        entry = spec.get("python", {}).get("entrypoint") if isinstance(spec, dict) else None
        if not isinstance(entry, str) or ":" not in entry:
            continue
        top = entry.split(":", 1)[0].split(".", 1)[0]
        if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
            name = doc.get("metadata", {}).get("name", "?")
            err.print(
                f"[yellow]warning:[/] playbook {name}: module {top!r} is beside the spec on this machine; "
                "only the documents are sent, so the gateway must be able to import it itself (install it "
                "where the gateway's workers run), or run it here with `mlops run`",
                soft_wrap=True,
                highlight=False,
            )


def deploy(
    target: Annotated[str, typer.Argument(help="A ref (pipeline/iris-classifier) or a spec file or folder")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Parameter override NAME=VALUE (repeatable)")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--target", "-t", help="Target provider (local, auto, ...)")
    ] = None,
    wait: WaitOpt = False,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="Keep what the run provisions after it ends (serving); `mlops destroy RUN`"
        ),
    ] = False,
) -> None:
    """Launch a run on the gateway: plan, provision, start the Runners, follow, tear down (unless --keep)."""
    from mlops_nocode.cli.source import parse_sets

    try:
        params = parse_sets(set_ or [])
    except SpecError as e:
        fail(e.problems, as_json)
    body: dict[str, Any] = {"pipeline": _pipeline(target, as_json), "parameters": params}
    if provider:
        body["target"] = {"provider": provider, "options": {}}
    if keep:
        body["keep"] = True
    with _client(as_json) as gw:
        run = gw.call("POST", "/api/v1/runs", json=body)
        if not wait:
            _queued(run, as_json)
            return
        err.print(f"run {run['id']} queued: {run['pipeline']}", highlight=False)
        _wait(gw, run, as_json, verbose)
