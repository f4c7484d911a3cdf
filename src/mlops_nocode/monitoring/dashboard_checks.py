"""Checks that a generated Grafana dashboard is one Grafana loads and that its queries are sound.

`problems(doc)` checks the structure: the SDK's own dashboard model decodes it back to the same JSON,
panel ids are unique, every panel sits inside the 24-column grid without overlapping another, every
query has a data source and an expression, and every `$variable` used is defined. `metric_names(expr)`
lists the series a PromQL expression reads (for the check against what the gateway exports), and
`rules_file(...)` turns expressions into a Prometheus rules file so that `promtool check rules` parses
each one with Prometheus's own parser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

GRID_COLUMNS = 24
MIN_SCHEMA_VERSION = 36  # Grafana 9+: data sources referenced as {type, uid} objects
# Grafana's own variables (`$__rate_interval`, `$__interval`...) and what a check puts in their place.
PLACEHOLDERS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$pipeline": ".*"}
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
    | {"offset", "inf", "nan", "atan2"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z]+")
_NUMBER = re.compile(r"(?<![A-Za-z_:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (identifiers that are neither functions,
    aggregations, keywords, label names nor numbers). Selecting by `{__name__=~...}` is not seen."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names: set[str] = set()
    for m in _IDENT.finditer(text):
        rest = text[m.end() :].lstrip()
        if m.group() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(m.group())
    return names


def substitute(expr: str) -> str:
    """The expression with Grafana's placeholders replaced by values Prometheus accepts."""
    for placeholder, value in sorted(PLACEHOLDERS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(placeholder, value)
    return expr


def _panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []  # panels inside a row


def targets(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every query of a dashboard with where it is (`<uid> panel <id> "<title>" target <refId>`)."""
    for panel in _panels(doc):
        for target in panel.get("targets") or []:
            where = f'{doc.get("uid")} panel {panel.get("id")} "{panel.get("title")}"'
            yield f"{where} target {target.get('refId')}", target


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def _round_trip(doc: dict[str, Any]) -> list[str]:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    try:
        decoded = Dashboard.from_json(json.loads(json.dumps(doc)))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return [f"the Grafana dashboard model cannot decode it: {type(e).__name__}: {e}"]
    again = json.loads(json.dumps(decoded, cls=JSONEncoder))
    if again != doc:
        changed = sorted(k for k in set(doc) | set(again) if doc.get(k) != again.get(k))
        return [f"the Grafana dashboard model does not read it back the same (fields {', '.join(changed)})"]
    return []


def problems(doc: dict[str, Any]) -> list[str]:
    """Every structural problem of one dashboard's JSON (empty when Grafana would load it as meant)."""
    found = _round_trip(doc)
    uid = doc.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        found.append(f"uid {uid!r} is not a stable Grafana uid (1-40 letters, digits, - or _)")
    if not doc.get("title"):
        found.append(f"{uid}: the dashboard has no title")
    version = doc.get("schemaVersion")
    if not isinstance(version, int) or version < MIN_SCHEMA_VERSION:
        found.append(
            f"{uid}: schemaVersion {version!r} predates data source references (< {MIN_SCHEMA_VERSION})"
        )
    ids: set[int] = set()
    spots: list[tuple[int, dict[str, int]]] = []
    for panel in _panels(doc):
        pid, pos = panel.get("id"), panel.get("gridPos") or {}
        if not isinstance(pid, int) or pid in ids:
            found.append(f"{uid}: panel id {pid!r} is missing or used twice")
        else:
            ids.add(pid)
        if not all(isinstance(pos.get(k), int) for k in ("x", "y", "w", "h")):
            found.append(f"{uid} panel {pid}: gridPos {pos} lacks x, y, w or h")
            continue
        if pos["x"] < 0 or pos["y"] < 0 or pos["w"] < 1 or pos["h"] < 1 or pos["x"] + pos["w"] > GRID_COLUMNS:
            found.append(f"{uid} panel {pid}: gridPos {pos} is outside the {GRID_COLUMNS}-column grid")
        found += [f"{uid}: panels {other} and {pid} overlap" for other, p in spots if _overlap(p, pos)]
        spots.append((pid if isinstance(pid, int) else -1, pos))
        if panel.get("type") != "row" and not panel.get("targets"):
            found.append(f"{uid} panel {pid}: no query")
        refs = [t.get("refId") for t in panel.get("targets") or []]
        if len(set(refs)) != len(refs) or not all(refs):
            found.append(f"{uid} panel {pid}: query refIds {refs} are not all set and distinct")
    for where, target in targets(doc):
        if not isinstance(target.get("datasource"), dict) or not target["datasource"].get("uid"):
            found.append(f"{where}: no data source")
        if not str(target.get("expr") or "").strip():
            found.append(f"{where}: no expression")
    defined = {v.get("name") for v in (doc.get("templating") or {}).get("list") or []}
    text = json.dumps(doc)
    for m in _VARIABLE.finditer(text):
        name = next(g for g in m.groups() if g)
        if not name.startswith("__") and name not in defined:
            found.append(f"{uid}: ${name} is used but no dashboard variable defines it")
    for panel in _panels(doc):
        if panel.get("repeat") and panel["repeat"] not in defined:
            found.append(f"{uid} panel {panel.get('id')}: repeats over undefined variable {panel['repeat']}")
    return found


def rules_file(exprs: list[tuple[str, str]]) -> str:
    """A Prometheus rules file with one recording rule per (where, expr), placeholders replaced, for
    `promtool check rules` (rule i records `dashboard_expr_<i>`, in the order given)."""
    rules = [{"record": f"dashboard_expr_{i}", "expr": substitute(expr)} for i, (_, expr) in enumerate(exprs)]
    return yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False)


def variable_metrics(doc: dict[str, Any]) -> set[str]:
    """The metric names the dashboard's query variables read (`label_values(<metric>, <label>)`)."""
    names: set[str] = set()
    for variable in (doc.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query)
            names |= metric_names(m.group(1)) if m else set()
    return names
