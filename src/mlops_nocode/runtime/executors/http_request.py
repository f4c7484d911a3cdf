"""An http step's request, built from its section with one pass of expression substitution.

- `url`: each value is percent-encoded as a whole (`/` `?` `#` `&` included), so it stays one piece of a
  path or query and cannot change the host; an expression that starts the URL gives the base URL and is
  taken as is. The result must be an http(s) URL with a host and no user name or password.
- `headers`, `query`, `form`, `body`: values substituted as text; a header value holding a line break
  or a NUL is refused (no header can be injected through a value).
- `json`: a string that is one expression takes the value with its JSON type; other strings get text.
- `body_file: ${{ inputs.X }}`: the content of file input X, streamed.
A value substituted is never read again as an expression. Input of a value type gives its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from mlops_nocode.runtime.attempt import Attempt, StepFailure
from mlops_nocode.runtime.secrets import fill as fill_secrets
from mlops_nocode.spec.expressions import EXPR_RE

if TYPE_CHECKING:
    import httpx

_BAD_HEADER = re.compile(r"[\r\n\0]")
CHUNK = 64 * 1024


def shown(url: str) -> str:
    """`url` as messages show it: scheme, host, port and path; no user, password, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a malformed URL)"
    host = f"[{host}]" if ":" in host else host
    text = f"{parts.scheme}://{host}{port}{parts.path}"
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Prepared:
    """The request of one attempt, every value substituted."""

    method: str
    url: str
    shown: str
    """The URL for messages and the log: secrets masked, no query or fragment."""
    headers: dict[str, str]
    query: dict[str, str]
    json_body: Any = None
    has_json: bool = False
    form: dict[str, str] | None = None
    body: str | None = None
    body_file: Path | None = None
    expect: list[int] = field(default_factory=list)
    output: str | None = None
    status_output: str | None = None
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    follow_redirects: bool = False

    def build(self, client: httpx.Client) -> httpx.Request:
        """A fresh request (a file body is opened again for each try)."""
        kwargs: dict[str, Any] = {"headers": self.headers, "params": self.query or None}
        if self.has_json:
            kwargs["json"] = self.json_body
        elif self.form is not None:
            kwargs["data"] = self.form
        elif self.body is not None:
            kwargs["content"] = self.body.encode("utf-8")
        elif self.body_file is not None:
            kwargs["content"] = _file_chunks(self.body_file)
            if not any(k.lower() == "content-type" for k in self.headers):
                kwargs["headers"] = {**self.headers, "Content-Type": "application/octet-stream"}
        return client.build_request(self.method, self.url, **kwargs)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def prepare(a: Attempt) -> Prepared:
    """The attempt's request; StepFailure (naming the field, never the value) when it cannot be made."""
    cfg: dict[str, Any] = dict(a.step.config or {})
    params = fill_secrets(a.step.params, a.secrets) if a.secrets else a.step.params
    value = _values(a, params)

    def text(s: str, encode: Callable[[str], str] = str) -> str:
        return EXPR_RE.sub(lambda m: encode(_as_text(value(m[1], m[2]))), s)

    url = _url(cfg.get("url", ""), text, value)
    masked = EXPR_RE.sub(lambda m: "***" if m[1] == "secrets" else m[0], cfg.get("url", "").strip())
    masked = _url_text(masked, text, value, lambda s: quote(s, safe=""))
    headers = {}
    for name, v in (cfg.get("headers") or {}).items():
        rendered = text(v)
        if _BAD_HEADER.search(rendered):
            raise StepFailure(
                f"http.headers.{name}: its value holds a line break or a NUL character (from a parameter, "
                "input or secret): refused, as it could add headers of its own; fix the value"
            )
        if rendered:  # a header whose value comes out empty (an optional token not given) is not sent
            headers[name] = rendered
    req = Prepared(
        method=str(cfg.get("method", "GET")),
        url=url,
        shown=_display(masked),
        headers=headers,
        query={k: text(v) for k, v in (cfg.get("query") or {}).items()},
        expect=list(cfg.get("expect") or []),
        output=cfg.get("output"),
        status_output=cfg.get("status_output"),
        timeout=float(cfg.get("timeout", 30.0)),
        retries=int(cfg.get("retries", 3)),
        backoff=float(cfg.get("backoff", 1.0)),
        follow_redirects=bool(cfg.get("follow_redirects", False)),
    )
    if cfg.get("json") is not None:
        req.has_json, req.json_body = True, _json(cfg["json"], text, value)
    if cfg.get("form") is not None:
        req.form = {k: text(v) for k, v in cfg["form"].items()}
    if cfg.get("body") is not None:
        req.body = text(cfg["body"])
    if cfg.get("body_file") is not None:
        req.body_file = _body_file(a, cfg["body_file"])
    return req


def _values(a: Attempt, params: dict[str, Any]) -> Callable[[str, str], Any]:
    def value(ns: str, name: str) -> Any:
        if ns == "params":
            return params.get(name)
        if ns == "secrets":
            return a.secrets.get(name, "")
        rec = a.inputs.get(name)
        if rec is None:
            return None
        if "value" not in rec:  # checked at plan time; a plan from elsewhere still never sends a path
            raise StepFailure(
                f"input {name!r} is a {rec.get('type')} (a file): its path is not sent; use "
                f"body_file: ${{{{ inputs.{name} }}}} to send its content"
            )
        return rec["value"]

    return value


def _as_text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v)


def _display(url: str) -> str:
    cut = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    return url[:cut] if cut <= 200 else url[:197] + "..."


def _url_text(
    template: str, text: Callable[..., str], value: Callable[[str, str], Any], encode: Callable[[str], str]
) -> str:
    """The URL with its values: the one that starts it as is, the others percent-encoded."""
    lead = EXPR_RE.match(template)
    base = _as_text(value(lead[1], lead[2])).strip() if lead else ""
    return base + text(template[lead.end() :] if lead else template, encode)


def _url(template: str, text: Callable[..., str], value: Callable[[str, str], Any]) -> str:
    template = template.strip()
    lead = EXPR_RE.match(template)
    url = _url_text(template, text, value, lambda s: quote(s, safe=""))
    where = "http.url (its base comes from a value)" if lead else "http.url"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise StepFailure(f"{where}: not a valid URL once substituted: fix the value") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StepFailure(
            f"{where}: not an http:// or https:// URL with a host once substituted "
            f"(scheme {parts.scheme or 'none'!r}): give a base URL such as https://example.org"
        )
    if parts.username is not None or parts.password is not None:
        raise StepFailure(
            f"{where}: the URL carries a user name or password: send credentials in a header instead"
        )
    if any(c in url for c in "\r\n\0 \t"):
        raise StepFailure(
            f"{where}: the URL holds spaces or control characters once substituted: fix the value"
        )
    return url


def _json(node: Any, text: Callable[[str], str], value: Callable[[str, str], Any]) -> Any:
    if isinstance(node, str):
        whole = EXPR_RE.fullmatch(node.strip())
        return value(whole[1], whole[2]) if whole and whole[3] is None else text(node)
    if isinstance(node, dict):
        return {k: _json(v, text, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_json(v, text, value) for v in node]
    return node


def _body_file(a: Attempt, expr: str) -> Path:
    m = EXPR_RE.fullmatch(expr.strip())
    rec = a.inputs.get(m[2]) if m and m[1] == "inputs" else None
    if rec is None or not rec.get("path"):
        raise StepFailure("http.body_file: must name a file input given to the step (${{ inputs.NAME }})")
    path = Path(rec["path"])
    if not path.is_file():
        raise StepFailure(
            f"http.body_file: input {m[2] if m else ''!r} is not a file (a folder cannot be sent)"
        )
    return path
