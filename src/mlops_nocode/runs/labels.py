"""Label values of the metrics, bounded: a run's target, and user strings (pipeline, step, metric,
worker names) admitted under a cap per label, beyond which they read as OTHER (monitoring.names)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mlops_nocode.monitoring import names
from mlops_nocode.runs.models import MetricLabelRow

MIXED = "mixed"  # the target label of a run whose steps are placed on several providers
MAX_TARGET = 64
MAX_VALUE = 512  # a longer user string is reported as OTHER (never truncated into another's series)


def plan_target(plan: dict[str, Any]) -> str:
    """The `target` label of a run: the provider its steps are placed on, `mixed` for several."""
    found: set[str] = set()
    for step in plan.get("steps") or []:
        placement = step.get("placement") or {}
        provider = placement.get("provider") or (step.get("target") or {}).get("provider") or "local"
        found.add("local" if provider == "auto" else str(provider)[:MAX_TARGET])
    if not found:
        return "local"
    return found.pop() if len(found) == 1 else MIXED


def pipeline_label(root: str) -> str:
    """The `pipeline` label of a run: its pipeline's name, without kind nor version
    (`pipeline/iris-classifier@1.0.0` -> `iris-classifier`), so a new version continues the series."""
    name = root.split("/", 1)[1] if "/" in root else root
    return name.split("@", 1)[0] or root


def digest(*values: Any) -> str:
    """A fixed-size key for label values of any length."""
    return hashlib.sha256(json.dumps(values, separators=(",", ":")).encode()).hexdigest()


def cap() -> int:
    """The cap in force (read at each call, so tests may lower `names.LABEL_VALUES_CAP`)."""
    return names.LABEL_VALUES_CAP


class Admitted:
    """The admitted values of user-string labels, within one write transaction (cached per call)."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self._seen: dict[tuple[str, str], str] = {}

    def __call__(self, label: str, value: str) -> str:
        """`value` when it is (or can still be) admitted for `label`, else OTHER (also when it is longer
        than MAX_VALUE characters)."""
        key = (label, value)
        known = self._seen.get(key)
        if known is not None:
            return known
        if len(value) > MAX_VALUE:
            return names.OTHER
        d = digest(value)
        row = self.s.get(MetricLabelRow, (label, d))
        if row is not None:
            out = value
        else:
            count = self.s.scalar(select(func.count()).where(MetricLabelRow.label == label)) or 0
            if count < cap():
                new = {"label": label, "digest": d, "value": value, "created_at": time.time()}
                self.s.execute(upsert_ignore(self.s, MetricLabelRow, new))
                out = value
            else:
                out = names.OTHER
        self._seen[key] = out
        return out


def upsert_ignore(s: Session, table: type[Any], values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the session's dialect (concurrent writers may race)."""
    if s.get_bind().dialect.name == "postgresql":
        return pg_insert(table).values(**values).on_conflict_do_nothing()
    return sqlite_insert(table).values(**values).on_conflict_do_nothing()


def cap_in_order(values: list[str]) -> dict[str, str]:
    """Map values (ordered by first appearance) to themselves for the first `cap()`, OTHER beyond."""
    limit = cap()
    return {v: (v if i < limit else names.OTHER) for i, v in enumerate(values)}
