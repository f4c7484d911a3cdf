"""Run the charts' PromQL against a Prometheus server's HTTP query API (`/api/v1/query_range`).

The queries come from `monitoring/charts.py`; two placeholders are filled here: `$__rate_interval` with a
window of four steps (what Grafana does, so a rate always spans several scrapes), and `"$pipeline"` with
the pipeline asked for as an escaped regex inside a PromQL string. A pipeline name is untrusted: every
character that is not a letter, digit or `_` is escaped for RE2 and then for the PromQL string, so no name
can end the string, the matcher or the regex."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import httpx

PIPELINE_PLACEHOLDER = '"$pipeline"'
RATE_PLACEHOLDER = "$__rate_interval"
MAX_SERIES = 50  # series kept per chart (a query by an unbounded label must not flood the page)


class PromUnavailable(Exception):
    """Prometheus did not answer usefully (down, timed out, an error status, a body that is not its API's).

    The message never carries the server's address (PROMETHEUS_URL may hold credentials)."""


def pipeline_regex(name: str | None) -> str:
    """An RE2 regex matching exactly `name` (`.*`, any pipeline, for None)."""
    if name is None:
        return ".*"
    out = []
    for ch in name:
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            out.append(ch)
        elif ch.isascii() and ch.isprintable() and ch != " ":
            out.append("\\" + ch)  # RE2: a backslash before punctuation is that character
        else:
            out.append(f"\\x{{{ord(ch):X}}}")  # spaces, controls, non-ASCII: by code point
    return "".join(out)


def render(expr: str, step: int, pipeline: str | None) -> str:
    """`expr` with its placeholders filled: the rate window (4 steps) and the pipeline's regex, quoted."""
    window = f"{max(4 * step, 1)}s"
    quoted = json.dumps(pipeline_regex(pipeline))  # ASCII only, so JSON's escapes are PromQL's
    return expr.replace(RATE_PLACEHOLDER, window).replace(PIPELINE_PLACEHOLDER, quoted)


_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def legend(template: str, labels: dict[str, str]) -> str:
    """A series' name from its legend template (`{{label}}` as in Grafana)."""
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template).strip() or template


@dataclass(frozen=True, slots=True)
class Series:
    """One result series of a range query: its labels and its (unix second, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float | None]]


class PromClient:
    """A small client of one Prometheus server's query API (httpx, one timeout for each request)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query_range(self, expr: str, start: int, end: int, step: int) -> list[Series]:
        """The matrix `expr` evaluates to between `start` and `end` every `step` seconds."""
        try:
            r = httpx.post(
                f"{self.url}/api/v1/query_range",
                data={"query": expr, "start": str(start), "end": str(end), "step": f"{step}s"},
                timeout=self.timeout,
                follow_redirects=False,
            )
        except httpx.HTTPError as e:
            raise PromUnavailable(f"no answer ({type(e).__name__})") from None
        try:
            body = r.json()
        except ValueError:
            raise PromUnavailable(f"HTTP {r.status_code}, not a Prometheus API answer") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = str(body.get("error", ""))[:200] if isinstance(body, dict) else ""
            raise PromUnavailable(f"HTTP {r.status_code} {error}".strip())
        data = body.get("data") or {}
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise PromUnavailable("the answer is not a matrix")
        out = []
        for item in data["result"][:MAX_SERIES]:
            labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
            points = [(float(t), _number(v)) for t, v in item.get("values") or []]
            out.append(Series(labels, points))
        return out


def _number(text: object) -> float | None:
    try:
        value = float(str(text))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
