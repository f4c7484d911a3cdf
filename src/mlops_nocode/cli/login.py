"""`mlops login URL` (check a credential against a gateway, then store it for the CLI) and `mlops logout`.

The credential is stored with its URL in `MLOPS_HOME/credentials.json` (0600), the file `mlops up` writes
the admin key to; it is never printed.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from mlops_nocode.cli.report import err, fail
from mlops_nocode.cli.server import _settings, credentials_path, read_credentials
from mlops_nocode.settings import is_loopback, write_private
from mlops_nocode.spec import Problem

UrlArg = Annotated[
    str,
    typer.Argument(help="The gateway URL, or the login URL `mlops up` printed (http://HOST:PORT/?token=...)"),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API key or token ('-' reads it from stdin; default: the URL's ?token=, else stdin or a prompt)",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Replace or forget a stored admin key (it may be its only copy)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def _read_token(where: str, as_json: bool) -> str:
    if sys.stdin.isatty():
        value = str(typer.prompt("API key or token", hide_input=True, err=True))
    else:
        value = sys.stdin.readline()
    if not value.strip():
        fail(
            [Problem("no API key or token given", where, "pass --token, or the login URL with ?token=")],
            as_json,
        )
    return value.strip()


def _from_mlops_up(stored: dict[str, Any]) -> bool:
    """Whether the stored credential is the admin key `mlops up` created (no `source` marker)."""
    return bool(stored.get("key")) and stored.get("source") != "login"


def _admin_scoped(stored: dict[str, Any]) -> bool:
    """Whether the stored credential is an admin key (possibly the only copy of one).

    The gateway it was stored for is asked (GET /api/v1/auth/whoami); when it cannot tell (unreachable,
    not answering 200 or 401), the stored marker decides: the key `mlops up` stored, or a login that
    recorded the admin scope. A key the gateway refuses (revoked, unknown) is not worth keeping."""
    import httpx

    if not stored.get("key"):
        return False
    marked = _from_mlops_up(stored) or "admin" in str(stored.get("scopes", "")).split(",")
    if not stored.get("url"):
        return marked
    try:
        r = httpx.get(
            f"{str(stored['url']).rstrip('/')}/api/v1/auth/whoami",
            headers={"Authorization": f"Bearer {stored['key']}"},
            timeout=httpx.Timeout(5.0, connect=2.0),
        )
    except httpx.HTTPError:
        return marked
    if r.status_code == 401:
        return False
    if r.status_code != 200:
        return marked
    try:
        scopes = r.json().get("scopes")
    except (ValueError, AttributeError):
        return marked
    return isinstance(scopes, list) and "admin" in scopes


def _only_copy(stored: dict[str, Any]) -> str:
    return (
        "the admin key `mlops up` created, its only copy"
        if _from_mlops_up(stored)
        else "an admin key (this may be its only copy)"
    )


def login(url: UrlArg, token: TokenOpt = None, force: ForceOpt = False, as_json: JsonOpt = False) -> None:
    """Check a credential against a gateway (GET /api/v1/auth/whoami) and store it for `mlops runs` and
    `mlops deploy`."""
    import httpx

    from mlops_nocode.cli.gateway import Credential, Gateway, normalize_url

    parsed = httpx.URL(url.strip()) if "://" in url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        fail(
            [Problem(f"not a gateway URL: {url.split('?')[0]!r}", "URL", "give e.g. http://127.0.0.1:8000")],
            as_json,
        )
    in_url = parsed.params.get("token")
    if token == "-":
        value, where = _read_token("--token -", as_json), "--token (stdin)"
    elif token:
        if in_url and in_url != token:
            fail([Problem("two different tokens given", "URL ?token= and --token", "give one")], as_json)
        value, where = token.strip(), "--token"
    elif in_url:
        value, where = in_url.strip(), "URL ?token="
    else:
        value, where = _read_token("stdin", as_json), "stdin"
    base = normalize_url(url)
    settings = _settings()
    path = credentials_path(settings)
    stored = read_credentials(settings)
    if stored.get("key") and stored["key"] != value and not force and _admin_scoped(stored):
        fail(
            [
                Problem(
                    f"this would replace the stored credential, {_only_copy(stored)}",
                    str(path),
                    "use MLOPS_URL and MLOPS_TOKEN for this gateway instead, or pass --force",
                )
            ],
            as_json,
        )
    with Gateway(Credential(base, value, where), as_json, checking=True) as gw:
        me: dict[str, Any] = gw.call("GET", "/api/v1/auth/whoami")
    record: dict[str, Any] = {"url": base, "key": value, "source": "login"}
    if _from_mlops_up(stored) and stored["key"] == value:
        record.pop("source")  # the same key `mlops up` stored: still its only copy
    scopes = [str(x) for x in me.get("scopes") or []]
    if "admin" in scopes:  # the marker: logout and another login ask for --force when the gateway is away
        record["scopes"] = ",".join(sorted(scopes))
    write_private(path, json.dumps(record) + "\n")
    if as_json:
        print(json.dumps({"status": "logged in", "url": base, "credentials": str(path)} | me))
        return
    who = f"{me.get('name') or 'key'} ({me.get('key_id')}; scopes {', '.join(me.get('scopes', []))})"
    err.print(f"[green]✓[/] logged in to {base} as {who}; stored in {path}", soft_wrap=True, highlight=False)
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        err.print("[yellow]![/] this gateway is plain http: the key travels unencrypted; prefer https")


def logout(force: ForceOpt = False, as_json: JsonOpt = False) -> None:
    """Forget the stored credential (the key stays valid on the gateway)."""
    settings = _settings()
    path = credentials_path(settings)
    stored = read_credentials(settings)
    if not path.exists():
        if as_json:
            print(json.dumps({"status": "not logged in", "credentials": str(path)}))
        else:
            err.print(f"not logged in (no credential in {path})", highlight=False)
        return
    if not force and _admin_scoped(stored):
        fail(
            [
                Problem(
                    f"the stored credential is {_only_copy(stored)}",
                    str(path),
                    "keep it, or pass --force to forget it (you then need another admin key to manage keys)",
                )
            ],
            as_json,
        )
    try:
        path.unlink()
    except OSError as e:
        fail(
            [Problem(f"cannot remove {path}: {e.strerror or e}", str(path), "check its permissions")], as_json
        )
    if as_json:
        print(json.dumps({"status": "logged out", "url": stored.get("url"), "credentials": str(path)}))
        return
    err.print(
        f"[green]✓[/] forgot the credential for {stored.get('url') or 'the gateway'} "
        "(the key itself stays valid; an admin can revoke it: DELETE /api/v1/keys/ID)",
        soft_wrap=True,
        highlight=False,
    )
