"""`mlops monitoring up|down|status`: Prometheus (and Alertmanager when installed) on this machine,
scraping the gateway and sending it the alerts (monitoring/stack.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.spec import Problem, SpecError

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def _settings(as_json: bool) -> Any:
    from mlops_nocode.monitoring.stack import StackSettings

    try:
        return StackSettings()
    except ValueError as e:
        fail([Problem(f"invalid settings: {e}", "MONITORING_*", "fix or unset the variable")], as_json)


def _home() -> Path:
    from mlops_nocode.catalogue.home import mlops_home

    return mlops_home()


def _default_gateway() -> str:
    """MLOPS_URL, else the URL `mlops up` (or `mlops login`) stored, else http://127.0.0.1:PORT."""
    from mlops_nocode.cli.server import _settings as gateway_settings
    from mlops_nocode.cli.server import read_credentials

    settings = gateway_settings()
    return (
        os.environ.get("MLOPS_URL", "").strip()
        or read_credentials(settings).get("url")
        or f"http://127.0.0.1:{settings.port or 8000}"
    )


def up(
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="The gateway's base URL (default: MLOPS_URL, else the one `mlops up` runs for MLOPS_HOME)",
        ),
    ] = None,
    prometheus_port: Annotated[
        int | None,
        typer.Option(
            "--prometheus-port", min=1, max=65535, help="Port on 127.0.0.1 (MONITORING_PROMETHEUS_PORT, 9090)"
        ),
    ] = None,
    alertmanager_port: Annotated[
        int | None,
        typer.Option(
            "--alertmanager-port",
            min=1,
            max=65535,
            help="Port on 127.0.0.1 (MONITORING_ALERTMANAGER_PORT, 9093)",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="A file holding an API key of the gateway (write scope to deliver alerts); default: keys "
            "created on the gateway's database of this MLOPS_HOME",
        ),
    ] = None,
    scrape_interval: Annotated[
        str | None,
        typer.Option(
            "--scrape-interval",
            help="How often to scrape and evaluate rules (MONITORING_SCRAPE_INTERVAL, 15s)",
        ),
    ] = None,
    worker: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            help="HOST:PORT of an `mlops worker --metrics-port` to scrape too (repeatable)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start Prometheus (and Alertmanager when installed) on 127.0.0.1 against the gateway; wait until
    they are ready and print their URLs. Configuration, storage and logs: MLOPS_HOME/monitoring/."""
    from mlops_nocode.monitoring import stack

    settings = _settings(as_json)
    home = _home()
    with err.status("starting the monitoring stack") as line:
        try:
            state, already = stack.up(
                home,
                gateway or _default_gateway(),
                key_file=key_file,
                prometheus_port=prometheus_port or settings.prometheus_port,
                alertmanager_port=alertmanager_port or settings.alertmanager_port,
                scrape_interval=scrape_interval or settings.scrape_interval,
                settings=settings,
                workers=worker,
                progress=lambda m: line.update(escape(m)),
            )
        except SpecError as e:
            line.stop()
            fail(e.problems, as_json)
    if as_json:
        print(json.dumps({"already_up": already, **state.to_json()}, indent=2))
    if already and gateway and _same_gateway(gateway, state.gateway) is False:
        err.print(
            f"[yellow]note:[/] it scrapes {escape(state.gateway)}, not {escape(gateway)}: "
            "`mlops monitoring down` first to change the gateway",
            soft_wrap=True,
        )
    if already:
        err.print(
            f"the monitoring stack is already up (pid {state.prometheus.pid}): "
            "`mlops monitoring down` stops it",
            highlight=False,
        )
    else:
        err.print(
            f"[green]✓[/] monitoring stack up, scraping {escape(state.gateway)} every {state.scrape_interval}"
        )
    err.print(f"  Prometheus:   {state.prometheus.url}", highlight=False)
    if state.alertmanager is not None:
        err.print(f"  Alertmanager: {state.alertmanager.url}", highlight=False)
    for note in state.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)


def _same_gateway(given: str, current: str) -> bool | None:
    """Whether `given` names the gateway the running stack scrapes (None when `given` is not a URL)."""
    from mlops_nocode.monitoring.promconfig import gateway_target

    try:
        return gateway_target(given).url == current
    except SpecError:
        return None


def down(as_json: JsonOpt = False) -> None:
    """Stop Prometheus and Alertmanager, revoke the keys `up` created; their stored data is kept."""
    from mlops_nocode.monitoring import stack

    try:
        state = stack.down(_home())
    except SpecError as e:
        fail(e.problems, as_json)
    if as_json:
        print(json.dumps({"stopped": state is not None}))
    if state is None:
        err.print("no monitoring stack was started for this MLOPS_HOME")
        return
    err.print(f"[green]✓[/] monitoring stack stopped ({', '.join(p.name for p in state.procs())})")
    if state.key_ids:
        err.print(
            f"[yellow]warning:[/] could not revoke the key(s) {', '.join(state.key_ids)} created for it: "
            "revoke them with `mlops keys revoke ID` where the gateway's database is",
            soft_wrap=True,
        )


def status(as_json: JsonOpt = False) -> None:
    """Whether Prometheus and Alertmanager run and are ready, and whether the gateway's scrape works."""
    from mlops_nocode.monitoring import stack

    home = _home()
    answer = stack.status(home)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    if "prometheus" not in answer:
        out.print("monitoring stack: [yellow]not started[/] (`mlops monitoring up`)")
        return
    for name in ("prometheus", "alertmanager"):
        p = answer.get(name)
        if p is None:
            continue
        word = (
            "[green]ready[/]" if p["ready"] else "[yellow]not ready[/]" if p["running"] else "[red]stopped[/]"
        )
        out.print(
            f"{name}: {word} at {p['url']} (pid {p['pid']}, log {escape(p['log'])})",
            highlight=False,
            soft_wrap=True,
        )
    for target in answer.get("targets", []):
        ok = target["health"] == "up"
        health = "[green]up[/]" if ok else f"[red]{escape(str(target['health']))}[/]"
        why = f": {escape(target['last_error'])}" if target.get("last_error") else ""
        name = f"{target['job']} {target['instance']}"
        out.print(f"  target {escape(name)}: {health}{why}", highlight=False, soft_wrap=True)
    if not answer["running"]:
        out.print("`mlops monitoring down` forgets the stopped stack; `up` starts it again")
