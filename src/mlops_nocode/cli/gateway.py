"""Talking to a gateway from the CLI: which URL and credential to use, requests with precise errors, and
run events as Server-Sent Events.

The credential comes from `MLOPS_URL` / `MLOPS_TOKEN` when set, else from `MLOPS_HOME/credentials.json`
(written by `mlops up` and `mlops login`). The stored key is only ever sent to the URL stored with it.
Nothing here prints or logs the credential: errors name the URL and where the credential came from.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from mlops_nocode import __version__
from mlops_nocode.cli.report import fail
from mlops_nocode.cli.server import _settings, credentials_path, read_credentials
from mlops_nocode.spec import Problem

LOGIN_FIX = "run `mlops up` (it stores the admin key for the CLI) or `mlops login URL`"
RECONNECTS = 5  # tries to resume an event stream that broke (Last-Event-ID), in a row


@dataclass(frozen=True)
class Credential:
    """Where the gateway is and how to authenticate; `source` says where they came from (for errors)."""

    url: str
    token: str = field(repr=False)
    source: str


def normalize_url(url: str) -> str:
    """`http://host:port[/prefix]` without a trailing slash, query or fragment."""
    parts = httpx.URL(url.strip())
    return str(parts.copy_with(query=None, fragment=None)).rstrip("/")


def resolve_credential(as_json: bool = False) -> Credential:
    """MLOPS_URL and MLOPS_TOKEN override the stored credential; fails with the fix when there is none."""
    settings = _settings()
    path = credentials_path(settings)
    stored = read_credentials(settings)
    stored_url = normalize_url(stored["url"]) if stored.get("url") else ""
    env_url = normalize_url(os.environ["MLOPS_URL"]) if os.environ.get("MLOPS_URL", "").strip() else ""
    env_token = os.environ.get("MLOPS_TOKEN", "").strip()
    if env_token:
        url = env_url or stored_url
        if not url:
            fail(
                [Problem("MLOPS_TOKEN is set but no gateway URL is known", "MLOPS_URL", "set MLOPS_URL")],
                as_json,
            )
        return Credential(url, env_token, "MLOPS_URL and MLOPS_TOKEN" if env_url else "MLOPS_TOKEN")
    if env_url:
        if stored.get("key") and stored_url == env_url:
            return Credential(env_url, stored["key"], str(path))
        what = (
            f"the stored one is for {stored_url}"
            if stored.get("key") and stored_url
            else f"none is stored in {path}"
        )
        fail(
            [
                Problem(
                    f"no credential for {env_url}: {what}",
                    "MLOPS_URL",
                    f"set MLOPS_TOKEN too, or log in: `mlops login {env_url}`",
                )
            ],
            as_json,
        )
    if not stored.get("key") or not stored_url:
        fail([Problem("no gateway credential stored", str(path), LOGIN_FIX)], as_json)
    return Credential(stored_url, stored["key"], str(path))


def _detail(response: httpx.Response) -> tuple[str, list[Problem]]:
    """The server's message and its located problems (invalid specs, invalid fields)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text.strip()[:300] or response.reason_phrase), []
    if not isinstance(body, dict):
        return str(body)[:300], []
    detail, problems = body.get("detail"), []
    for p in body.get("problems") or []:
        problems.append(Problem(str(p.get("what", "")), str(p.get("where", "")), str(p.get("fix", ""))))
    if isinstance(detail, list):
        for e in detail:
            loc = ".".join(str(x) for x in e.get("loc", []) if x != "body") or "body"
            problems.append(Problem(str(e.get("msg", "")), loc, "fix this value"))
        detail = "invalid request"
    return str(detail), problems


class Gateway:
    """An HTTP client for one gateway; every failure ends the command with a located problem (exit 2)."""

    def __init__(self, credential: Credential, as_json: bool = False, checking: bool = False) -> None:
        self.credential = credential
        self.as_json = as_json
        self.checking = checking  # `mlops login`: the credential and the URL are being tried out
        self.http = httpx.Client(
            base_url=credential.url,
            headers={"Authorization": f"Bearer {credential.token}", "User-Agent": f"mlops-cli/{__version__}"},
            timeout=httpx.Timeout(30.0, connect=10.0),
        )

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def unreachable(self, e: httpx.TransportError) -> NoReturn:
        """Fail naming the URL that did not answer."""
        reason = str(e) or type(e).__name__
        fail(
            [
                Problem(
                    f"cannot reach the gateway at {self.credential.url}: {reason}",
                    self.credential.source,
                    "start it with `mlops up`, or check the URL (MLOPS_URL, or `mlops login URL`)",
                )
            ],
            self.as_json,
        )

    def refused(self, response: httpx.Response) -> NoReturn:
        """Fail with the server's message and where it applies, and how to fix it."""
        method = response.request.method
        where = f"{method} {response.request.url.copy_with(query=None)}"
        detail, problems = _detail(response)
        code = response.status_code
        if code == 401:
            fix = (
                "check the key: the login URL `mlops up` printed carries the admin key; an admin can create "
                "others (POST /api/v1/keys)"
                if self.checking
                else "log in again: `mlops login URL` (the login URL `mlops up` printed), or set MLOPS_TOKEN"
            )
            problems = [
                Problem(
                    f"the gateway refused the credential: {detail}",
                    f"{self.credential.source} ({self.credential.url})",
                    fix,
                )
            ]
        elif code == 404 and self.checking:
            problems = [
                Problem(
                    f"no MLOps gateway answers at {self.credential.url} ({where}: 404)",
                    "URL",
                    "give the gateway's base URL, e.g. http://127.0.0.1:8000 (or the login URL `mlops up` "
                    "printed)",
                )
            ]
        elif code == 403:
            problems = [Problem(detail, where, "use a key with that scope (an admin key can create one)")]
        elif code == 404:
            problems = [Problem(detail, where, "check the id or ref (`mlops runs list` shows the runs)")]
        elif code == 409:
            problems = [Problem(detail, where, "see its state with `mlops runs show ID`")]
        elif not problems:
            fix = "see the gateway's log" if code >= 500 else "fix the request"
            problems = [Problem(f"HTTP {code}: {detail}", where, fix)]
        fail(problems, self.as_json)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; its JSON answer, or the command fails saying why."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            self.unreachable(e)
        if response.status_code >= 400:
            self.refused(response)
        try:
            return response.json()
        except ValueError:
            fail(
                [
                    Problem(
                        f"the answer to {method} {path} is not JSON",
                        self.credential.url,
                        "check that this URL is an MLOps gateway (`mlops login URL`)",
                    )
                ],
                self.as_json,
            )

    def events(self, run_id: str, after: int = 0, only: str | None = None) -> Iterator[tuple[str, Any]]:
        """The run's events as `(type, data)` from its SSE stream, live, ending with `("end", {status,
        details})`. A broken stream is resumed after the last event seen (Last-Event-ID)."""
        last, broken = after, 0
        params = {"type": only} if only else {}
        while True:
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            try:
                with self.http.stream(
                    "GET",
                    f"/api/v1/runs/{run_id}/logs",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(30.0, connect=10.0, read=90.0),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        self.refused(response)
                    for kind, ident, data in parse_sse(response.iter_lines()):
                        broken = 0
                        if ident is not None and ident.isdigit():
                            last = int(ident)
                        yield kind, data
                        if kind == "end":
                            return
            except httpx.TransportError as e:
                broken += 1
                if broken > RECONNECTS:
                    self.unreachable(e)
                time.sleep(min(0.5 * broken, 3.0))
                continue
            broken += 1  # the stream closed without an end event: resume
            if broken > RECONNECTS:
                fail(
                    [
                        Problem(
                            f"the event stream of run {run_id} keeps closing early",
                            f"{self.credential.url}/api/v1/runs/{run_id}/logs",
                            "check the gateway's log; `mlops runs show ID` gives the run's state",
                        )
                    ],
                    self.as_json,
                )


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str | None, Any]]:
    """`(event, id, data)` for each Server-Sent Event (data parsed as JSON when it is); comments skipped."""
    kind: str = "message"
    ident: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield kind, ident, value
            kind, ident, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value_text = line.partition(":")
        value_text = value_text.removeprefix(" ")
        if name == "event":
            kind = value_text
        elif name == "id":
            ident = value_text
        elif name == "data":
            data.append(value_text)
