"""`mlops keys list|create|revoke`: manage API keys.

By default on the gateway's database itself (MLOPS_HOME's SQLite file, or DATABASE_URL), so whoever can
read MLOPS_HOME (or the database) can always get an admin key back, with the gateway stopped or running:
`mlops keys create --admin` is the recovery path when every admin key is lost. A running gateway sees a
new key at once and a revocation within 2 s (its key cache). `--remote` goes through the gateway's API
instead (`/api/v1/keys`, with the credential of `mlops up` / `mlops login`, or MLOPS_URL / MLOPS_TOKEN;
it needs an admin key).

The last live admin key is never revoked, either way. A key's value is printed once, by `create`, on
stdout alone (`KEY=$(mlops keys create ci --scope write)`); nothing else prints it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from mlops_nocode.cli.report import err, fail, out
from mlops_nocode.spec import Problem

if TYPE_CHECKING:
    from mlops_nocode.runs.keys import KeyStore

app = typer.Typer(
    help="API keys, on the gateway's database (works with the gateway stopped), or --remote through its API.",
    no_args_is_help=True,
)


class Scope(StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
RemoteOpt = Annotated[
    bool,
    typer.Option(
        "--remote",
        help="Through the gateway's API with the stored credential (or MLOPS_URL/MLOPS_TOKEN) instead of "
        "its database; needs an admin key",
    ),
]
RECOVERY = "create another admin key first: `mlops keys create --admin`, then revoke this one"


def _store(as_json: bool) -> KeyStore:
    """The key store on the database the gateway uses (migrated, like `mlops up` does)."""
    from sqlalchemy.exc import SQLAlchemyError

    from mlops_nocode.cli.server import _settings
    from mlops_nocode.runs.db import Database
    from mlops_nocode.runs.keys import KeyStore

    settings = _settings()
    where = "DATABASE_URL" if settings.database_url else str(settings.home / "mlops.db")
    try:
        db = Database(settings.db_url)
        db.migrate(settings.home)
    except (ValueError, SQLAlchemyError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        fail(
            [
                Problem(
                    f"cannot open the gateway's database: {reason}",
                    where,
                    "run this where the gateway's MLOPS_HOME is, with its DATABASE_URL (or use --remote)",
                )
            ],
            as_json,
        )
    return KeyStore(db, cache_seconds=0)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _remote(method: str, path: str, as_json: bool, body: Any = None) -> Any:
    """One call to /api/v1/keys...; a 409 (the last admin key) fails with the recovery path."""
    import httpx

    from mlops_nocode.cli.gateway import Gateway, _detail, resolve_credential

    with Gateway(resolve_credential(as_json), as_json) as gw:
        try:
            r = gw.http.request(method, path, json=body)
        except httpx.TransportError as e:
            gw.unreachable(e)
        if r.status_code == 409:
            fail([Problem(_detail(r)[0], f"{method} {gw.credential.url}{path}", RECOVERY)], as_json)
        if r.status_code >= 400:
            gw.refused(r)
        return r.json()


@app.command("list")
def list_keys(remote: RemoteOpt = False, as_json: JsonOpt = False) -> None:
    """Every key, live and revoked (never their values)."""
    keys = (
        _remote("GET", "/api/v1/keys", as_json) if remote else [k.to_json() for k in _store(as_json).list()]
    )
    if as_json:
        print(json.dumps(keys, indent=2))
        return
    from rich.table import Table

    table = Table("id", "name", "scopes", "created (UTC)", "revoked (UTC)")
    for k in keys:
        table.add_row(
            k["id"], k["name"], ",".join(k["scopes"]), _when(k["created_at"]), _when(k["revoked_at"])
        )
    out.print(table)


def _bad(message: str, where: str, fix: str, as_json: bool) -> NoReturn:
    fail([Problem(message, where, fix)], as_json)


@app.command("create")
def create(
    name: Annotated[
        str | None, typer.Argument(help="A name for the key (default: admin with --admin, else cli)")
    ] = None,
    scope: Annotated[
        list[Scope] | None,
        typer.Option("--scope", "-s", help="read, write (implies read) or admin (implies write); repeatable"),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="An admin key (same as --scope admin)")] = False,
    remote: RemoteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print its value once (stdout; with --json, in the document)."""
    from mlops_nocode.runs.keys import NAME_RE

    scopes = sorted({s.value for s in scope or []} | ({"admin"} if admin else set()))
    if not scopes:
        _bad("no scope given", "--scope", "give --scope read|write|admin (repeatable), or --admin", as_json)
    name = name or ("admin" if "admin" in scopes else "cli")
    if not NAME_RE.match(name):
        _bad(f"invalid key name {name!r}", "NAME", "1 to 100 letters, digits, spaces and _ . @ -", as_json)
    if remote:
        created = _remote("POST", "/api/v1/keys", as_json, {"name": name, "scopes": scopes})
    else:
        key, value = _store(as_json).create(name, scopes)
        created = key.to_json() | {"key": value}
    if as_json:
        print(json.dumps(created, indent=2))
        return
    err.print(
        f"[green]✓[/] created key {created['id']} ({created['name']}; "
        f"scopes {', '.join(created['scopes'])}); "
        "its value, shown this once, is on stdout. Store it for the CLI with `mlops login URL` (paste it), "
        "or open URL/?token=<key> in a browser",
        soft_wrap=True,
        highlight=False,
    )
    print(created["key"])


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `mlops keys list`)")],
    remote: RemoteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key (its tokens and browser sessions stop working); never the last live admin key."""
    from mlops_nocode.runs.keys import LastAdminKey

    if remote:
        from urllib.parse import quote

        revoked = _remote("DELETE", f"/api/v1/keys/{quote(key_id, safe='')}", as_json)
    else:
        store = _store(as_json)
        try:
            ok = store.revoke(key_id)
        except LastAdminKey as e:
            _bad(str(e), "KEY_ID", RECOVERY, as_json)
        if not ok:
            _bad(f"no live key {key_id!r}", "KEY_ID", "see the keys with `mlops keys list`", as_json)
        found = store.get(key_id)
        assert found is not None
        revoked = found.to_json()
    if as_json:
        print(json.dumps(revoked, indent=2))
        return
    err.print(
        f"[green]✓[/] revoked key {revoked['id']} ({revoked['name']}); "
        "a running gateway refuses it within 2 s",
        soft_wrap=True,
        highlight=False,
    )
