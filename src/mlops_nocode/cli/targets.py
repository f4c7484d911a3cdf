"""`mlops targets`: every target provider, its state and its offers; `mlops targets refresh`."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.spec import Problem

app = typer.Typer(
    help="Target providers: their state (credentials, terraform) and offers with prices.",
    invoke_without_command=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def _unknown(name: str, as_json: bool) -> None:
    from mlops_nocode.providers import registry

    fail(
        [
            Problem(
                f"unknown provider {name[:40]!r}", "--provider", f"use one of: {', '.join(registry.names())}"
            )
        ],
        as_json,
    )


def _state(t: dict[str, Any]) -> str:
    if not t["installed"]:
        return f"[dim]not installed: {escape(t['reason'])}[/]"
    creds = "[green]credentials present[/]" if t["credentials"] else "[red]credentials missing[/]"
    if t["missing"]:
        creds += f" ({escape(', '.join(t['missing']))})"
    tf = {True: ", [green]terraform present[/]", False: ", [red]terraform/tofu missing[/]", None: ""}
    ready = "[green]ready[/]" if t["ready"] else "[yellow]not ready[/]"
    return f"{ready}: {creds}{tf[t['terraform']]}"


def _gpus(t: dict[str, Any]) -> str:
    """This machine's GPUs (the local offer's `extra`), or why it has none."""
    extra = t["offers"][0].get("extra", {}) if t["provider"] == "local" and t["offers"] else {}
    if extra.get("gpus"):
        each = ", ".join(f"{g['index']}: {g['gpu_type']} {g['memory_gib']} GiB" for g in extra["gpus"])
        return f"\nGPUs (NVML, driver {extra.get('driver')}): {each}"
    return f"\nno GPU: {extra['gpu_reason']}" if extra.get("gpu_reason") else ""


def _table(t: dict[str, Any]) -> Table:
    sheet = t.get("sheet") or {}
    caption = ""
    if sheet.get("date"):
        refreshed = " (refreshed)" if sheet.get("refreshed") else ""
        caption = f"prices of {sheet['date']}{refreshed} from {sheet['source']}"
    elif sheet.get("error"):
        caption = f"price sheet unreadable: {sheet['error']}"
    caption += _gpus(t)
    table = Table(title=f"{t['provider']}: {_state(t)}", caption=escape(caption), title_justify="left")
    table.add_column("offer", overflow="fold", min_width=18)
    for name in ("vCPU", "memory", "GPU", "GPU mem", "price/h", "region"):
        text = name in ("GPU", "region")
        table.add_column(name, justify="left" if text else "right", no_wrap=not text, overflow="fold")
    for o in t["offers"]:
        gpu = f"{o['gpu_count']}x {o['gpu_type']}" if o["gpu_count"] else "-"
        table.add_row(
            escape(o["id"]),
            f"{o['vcpus']:g}",
            f"{o['memory_gib']:g} GiB",
            escape(gpu),
            f"{o['gpu_memory_gib']:g} GiB" if o["gpu_count"] else "-",
            f"{o['price_per_hour']:.4g} {o['currency']}",
            escape(o["region"] or "-"),
        )
    return table


@app.callback()
def targets(
    ctx: typer.Context,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="Only this provider")] = None,
    as_json: JsonOpt = False,
    check: Annotated[
        bool, typer.Option("--check", help="Also ask providers that can whether they answer now (ray)")
    ] = False,
) -> None:
    """List every target provider with its state and offers (cheapest first)."""
    if ctx.invoked_subcommand is not None:
        return
    from mlops_nocode.providers.targets import UnknownProvider
    from mlops_nocode.providers.targets import targets as listing

    try:
        found = listing(os.environ, provider, check)
    except UnknownProvider:
        _unknown(provider or "", as_json)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for t in found:
        out.print(_table(t) if t["installed"] else f"{t['provider']}: {_state(t)}", highlight=False)


@app.command()
def refresh(
    provider: Annotated[
        str | None, typer.Argument(help="The provider to refresh (default: every ready one)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch offers and prices from the providers' APIs (needs their credentials); stored under
    MLOPS_HOME/prices, they are used from then on."""
    from mlops_nocode.providers import registry
    from mlops_nocode.providers.base import ProviderError
    from mlops_nocode.providers.targets import refresh as fetch

    if provider is not None and provider not in registry.names():
        _unknown(provider, as_json)
    chosen = (
        [provider]
        if provider
        else [
            p.name for p in registry.installed() if p.features.provisions and p.state(os.environ).credentials
        ]
    )
    if not chosen:
        fail(
            [
                Problem(
                    "no provider has credentials here",
                    "mlops targets refresh",
                    "set a provider's credentials (see `mlops targets`)",
                )
            ],
            as_json,
        )
    counts: dict[str, int] = {}
    for name in chosen:
        try:
            counts[name] = len(fetch(name, os.environ))
        except registry.ProviderMissing as e:
            fail([Problem(str(e), name, "install a version with this provider")], as_json)
        except ProviderError as e:
            fail([Problem(e.what, e.where, e.fix)], as_json)
    if as_json:
        print(json.dumps({"refreshed": counts}))
        return
    for name, n in counts.items():
        err.print(f"[green]✓[/] {name}: {n} offer(s) refreshed")


def _register_kuberay() -> None:
    from mlops_nocode.cli.kuberay import kuberay

    app.command("kuberay")(kuberay)


_register_kuberay()
