"""`mlops llm ...`: the model routes (MLOPS_HOME/llm/routes.yaml), the LiteLLM proxy configuration they
render, the proxy itself on this machine (`up`, `down`, `status`) and the keys it accepts (`keys`).

A key's value is printed once, by `keys create`, on stdout alone; nothing else prints a key."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlops_nocode.cli.report import err, fail, out, write_output
from mlops_nocode.spec import Problem, SpecError

app = typer.Typer(help="Model routes, the LiteLLM proxy on this machine, and its keys.", no_args_is_help=True)
routes_app = typer.Typer(help="The models the platform can reach, by name (MLOPS_HOME/llm/routes.yaml).",
                         no_args_is_help=True)  # fmt: skip
keys_app = typer.Typer(help="Keys the LiteLLM proxy accepts, with budgets and spend.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
app.add_typer(keys_app, name="keys")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
CLI_WHERE = {
    "name": "--name",
    "model": "--model",
    "kind": "--kind",
    "api_base": "--api-base",
    "api_key_secret": "--key-secret",
    "input_cost_per_token": "--price-in",
    "output_cost_per_token": "--price-out",
    "supports_json_schema": "--json-schema",
    "fallbacks": "--fallback",
}


def _home() -> Path:
    from mlops_nocode.catalogue.home import mlops_home

    try:
        return mlops_home()
    except SpecError as e:
        fail(e.problems)


def _routes(home: Path, as_json: bool = False) -> dict[str, Any]:
    from mlops_nocode.integrations.litellm.routes import RouteError, load_routes

    try:
        return load_routes(home)
    except RouteError as e:
        fail([Problem(str(e), "MLOPS_HOME/llm/routes.yaml", "fix or remove the file")], as_json)


def _settings(as_json: bool) -> Any:
    from pydantic import ValidationError

    from mlops_nocode.settings import Settings

    try:
        return Settings()
    except ValidationError as e:
        first = e.errors()[0]
        where = str(first["loc"][0]).upper() if first["loc"] else "environment"
        fail([Problem(str(first["msg"]), where, "fix that environment variable")], as_json)


@routes_app.command("list")
def routes_list(as_json: JsonOpt = False) -> None:
    """The configured routes (no secret values: a route names the secret holding its key)."""
    routes = _routes(_home(), as_json)
    if as_json:
        print(json.dumps([r.model_dump(exclude_none=True) for r in routes.values()], indent=2))
        return
    if not routes:
        err.print(
            "no model route: add one with `mlops llm routes add --name chat --model openai/gpt-4o-mini`"
        )
        return
    table = Table("name", "kind", "model", "api base", "key secret", "fallbacks", "source")
    for r in routes.values():
        cells = (
            r.name,
            r.kind,
            r.model,
            r.api_base or "",
            r.api_key_secret or "",
            ", ".join(r.fallbacks),
            r.source,
        )
        table.add_row(*(escape(c) for c in cells))
    out.print(table)


@routes_app.command("add")
def routes_add(
    name: Annotated[str, typer.Option("--name", help="What steps write as `model:`")],
    model: Annotated[str, typer.Option("--model", help="LiteLLM model string, e.g. openai/gpt-4o-mini")],
    kind: Annotated[str, typer.Option("--kind", help="chat, completion or embedding")] = "chat",
    api_base: Annotated[str | None, typer.Option("--api-base", help="http(s) base URL of the server")] = None,
    key_secret: Annotated[
        str | None, typer.Option("--key-secret", help="NAME of the secret holding the provider key")
    ] = None,
    price_in: Annotated[float | None, typer.Option("--price-in", help="USD per input token")] = None,
    price_out: Annotated[float | None, typer.Option("--price-out", help="USD per output token")] = None,
    json_schema: Annotated[
        bool | None, typer.Option("--json-schema/--no-json-schema", help="Model accepts JSON-schema output")
    ] = None,
    fallback: Annotated[
        list[str] | None, typer.Option("--fallback", help="Route tried when this fails")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or replace a route (validated: a bad value is reported at its option, nothing is saved)."""
    from mlops_nocode.integrations.litellm.route_input import parse_route
    from mlops_nocode.integrations.litellm.routes import save_route

    home = _home()
    data = {"name": name, "model": model, "kind": kind, "api_base": api_base, "api_key_secret": key_secret,
            "input_cost_per_token": price_in, "output_cost_per_token": price_out,
            "supports_json_schema": json_schema, "fallbacks": fallback or []}  # fmt: skip
    try:
        route = parse_route(data, _routes(home, as_json), CLI_WHERE)
    except SpecError as e:
        fail(e.problems, as_json)
    save_route(home, route)
    if as_json:
        print(json.dumps(route.model_dump(exclude_none=True), indent=2))
    err.print(f"[green]✓[/] route [bold]{escape(route.name)}[/] → {escape(route.model)}", highlight=False)


@routes_app.command("remove")
def routes_remove(name: Annotated[str, typer.Argument(help="The route's name")]) -> None:
    """Remove a route."""
    from mlops_nocode.integrations.litellm.routes import remove_route

    if not remove_route(_home(), name):
        fail([Problem(f"no model route {name!r}", "NAME", "see `mlops llm routes list`")])
    err.print(f"[green]✓[/] route [bold]{escape(name)}[/] removed", highlight=False)


@app.command("config")
def config(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout")
    ] = None,
    k8s: Annotated[
        bool, typer.Option("--k8s", help="As for the Kubernetes image (master key only, no platform hooks)")
    ] = False,
) -> None:
    """The LiteLLM proxy configuration rendered from the routes (keys as os.environ/NAME references)."""
    from mlops_nocode.integrations.litellm.proxy_config import config_yaml

    text = config_yaml(_routes(_home()), platform_keys=not k8s)
    if out_file is None:
        print(text, end="")
        return
    write_output(out_file, text, "--out")
    err.print(f"[green]✓[/] wrote {escape(str(out_file))}", highlight=False)


@app.command("manifests")
def manifests(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the manifests into")],
    routes_file: Annotated[
        Path | None, typer.Option("--routes", help="A routes file instead of MLOPS_HOME's routes")
    ] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="metadata.namespace to set")] = None,
) -> None:
    """Kubernetes manifests of the proxy (ConfigMap, Deployment, Service; Secret references only)."""
    from mlops_nocode.integrations.litellm import k8s
    from mlops_nocode.integrations.litellm.routes import RouteError

    try:
        routes = k8s.routes_file(routes_file) if routes_file else _routes(_home())
    except RouteError as e:
        fail([Problem(str(e), "--routes", "give a file holding `routes: [...]`")])
    try:
        paths = k8s.write(out_dir, routes, namespace)
    except OSError as e:
        fail([Problem(f"cannot write {out_dir}: {e.strerror or e}", "--out", "give a writable folder")])
    for p in paths:
        err.print(f"[green]✓[/] wrote {escape(str(p))}", highlight=False)


def _stored_secrets(home: Path, settings: Any, as_json: bool) -> dict[str, str]:
    """The secrets the routes name that are stored in the gateway's vault (`PUT /api/v1/secrets`), when
    this MLOPS_HOME has a gateway database; they win over the environment, as for runs."""
    from mlops_nocode.integrations.litellm.proxy_config import secret_names

    names = secret_names(_routes(home, as_json))
    if not names or not (settings.database_url or (home / "mlops.db").exists()):
        return {}
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_nocode.runs.db import Database
    from mlops_nocode.runs.vault import SecretStore, SecretUnreadable
    from mlops_nocode.settings import SettingsError, resolve_secret_key

    try:
        db = Database(settings.db_url)
        try:
            found: dict[str, str] = SecretStore(db, resolve_secret_key(settings)).values(names)
            return found
        finally:
            db.close()
    except (SecretUnreadable, SettingsError, SQLAlchemyError, OSError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        problem = Problem(
            f"cannot read the stored secrets: {reason}",
            "DATABASE_URL / SECRET_KEY",
            "run this where the gateway's MLOPS_HOME is, or export the secrets instead",
        )
        fail([problem], as_json)


@app.command("up")
def up(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port on 127.0.0.1")] = 4000,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=1, help="Seconds to wait for readiness (LLM_PROXY_READY_TIMEOUT)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start the LiteLLM proxy on 127.0.0.1 with the routes' configuration; wait until it is ready."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mlops_nocode.integrations.litellm import proxy

    home = _home()
    settings = _settings(as_json)
    environ = {**os.environ, **_stored_secrets(home, settings, as_json)}
    wait = timeout or settings.llm_proxy_ready_timeout
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("starting the LiteLLM proxy")
        try:
            state = proxy.up(
                home,
                environ,
                port=port,
                ready_timeout=wait,
                retries=settings.llm_proxy_retries,
                progress=lambda m: bar.update(task, description=m),
            )
        except SpecError as e:
            fail(e.problems, as_json)
    if as_json:
        print(json.dumps(state.public(), indent=2))
    err.print(f"[green]✓[/] LiteLLM proxy ready at [bold]{state.url}[/] (pid {state.pid}, log {state.log})")
    err.print("  callers of this MLOPS_HOME use it; other clients need `mlops llm keys create NAME`")


@app.command("down")
def down() -> None:
    """Stop the proxy and every process it started."""
    from mlops_nocode.integrations.litellm import proxy

    state = proxy.down(_home())
    if state is None:
        err.print("no LiteLLM proxy was started for this MLOPS_HOME")
        return
    err.print(f"[green]✓[/] LiteLLM proxy at {state.url} stopped")


@app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Whether the proxy runs and answers its readiness probe, and the routes it serves."""
    from mlops_nocode.integrations.litellm import proxy

    home = _home()
    state = proxy.read_state(home)
    alive = state is not None and proxy.running(home) is not None
    answer: dict[str, Any] = {"running": alive, "ready": bool(alive and state and proxy.ready(state.url))}
    if state is not None:
        answer.update(state.public())
    answer["routes"] = sorted(_routes(home, as_json))
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    if state is None:
        out.print("LiteLLM proxy: [yellow]not started[/] (`mlops llm up`)")
    elif not alive:
        out.print(f"LiteLLM proxy: [red]stopped[/] (was pid {state.pid}; `mlops llm down` forgets it)")
    else:
        ok = "[green]ready[/]" if answer["ready"] else "[yellow]not ready[/]"
        out.print(
            f"LiteLLM proxy: {ok} at {state.url} (pid {state.pid}, up {time.time() - state.started:.0f}s)"
        )
    out.print(f"routes: {escape(', '.join(answer['routes']) or 'none')}", highlight=False)


def _keys() -> Any:
    from mlops_nocode.integrations.litellm.vkeys import VirtualKeys, keys_path

    return VirtualKeys(keys_path(_home()))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key")],
    budget: Annotated[float | None, typer.Option("--budget", min=0, help="USD it may spend")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Route it may call (repeatable)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its value is printed once, on stdout (KEY=$(mlops llm keys create app))."""
    from mlops_nocode.integrations.litellm.vkeys import BadKeyInput

    try:
        info, value = _keys().create(name, budget_usd=budget, models=model)
    except BadKeyInput as e:
        fail(
            [
                Problem(
                    str(e), "NAME" if e.field == "name" else "--budget", "see `mlops llm keys create --help`"
                )
            ]
        )
    if as_json:
        print(json.dumps({**info.to_json(), "key": value}, indent=2))
    else:
        print(value)
    err.print(f"[green]✓[/] key {info.id} ({escape(name)}) created; its value is shown only now")


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """Every key (never its value), with its budget, spend and tokens."""
    keys = _keys().list()
    if as_json:
        print(json.dumps([k.to_json() for k in keys], indent=2))
        return
    table = Table("id", "name", "state", "budget USD", "spent USD", "tokens in/out", "requests", "models")
    for k in keys:
        state = "revoked" if k.revoked else "live"
        budget = "" if k.budget_usd is None else f"{k.budget_usd:g}"
        table.add_row(k.id, escape(k.name), state, budget, f"{k.spend_usd:.6f}",
                      f"{k.prompt_tokens}/{k.completion_tokens}", str(k.requests),
                      escape(", ".join(k.models) or "all"))  # fmt: skip
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `mlops llm keys list`)")],
) -> None:
    """Revoke a key: the proxy refuses it from its next call."""
    if not _keys().revoke(key_id):
        fail([Problem(f"no live key {key_id!r}", "ID", "see `mlops llm keys list`")])
    err.print(f"[green]✓[/] key {escape(key_id)} revoked")
