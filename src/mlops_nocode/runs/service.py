"""The run service: create (compile + queue), list, get, cancel, retry, events; claiming (the rest of
the worker side, reports, ends and recovery, is in runs.claims).

Runs are queued in the database; workers (threads of `mlops up`, or `mlops worker` processes) claim them
one at a time (an atomic UPDATE on SQLite, SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL), heartbeat
while they run, and record the end. A run whose worker stops heartbeating is re-queued (finished steps
come back from the cache) or, after `max_attempts` claims, failed with the reason.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, Text, and_, bindparam, func, select, text, type_coerce, update

from mlops_nocode.compiler import Plan
from mlops_nocode.runs.claims import Beat, ClaimOps, NewEvent
from mlops_nocode.runs.compiling import Inline, prepare
from mlops_nocode.runs.db import AnyRow, Database
from mlops_nocode.runs.errors import RunNotFound, RunStateError, RunTaken, SeqGap
from mlops_nocode.runs.eventstats import record_end, record_start
from mlops_nocode.runs.labels import plan_target
from mlops_nocode.runs.listen import CHANNEL as QUEUED_CHANNEL
from mlops_nocode.runs.models import TERMINAL, EventRow, RunRow
from mlops_nocode.runs.notify_targets import RunTargets
from mlops_nocode.runtime.state import new_run_id
from mlops_nocode.spec import Problem, SpecError

__all__ = [
    "Beat",
    "NewEvent",
    "RunNotFound",
    "RunService",
    "RunStateError",
    "RunTaken",
    "SeqGap",
    "event_json",
    "loads",
    "run_json",
    "step_ids",
]


# What the API shows of a run, selected as columns by the read paths: not `spec` nor `artifacts`, and not
# the `plan` either (only its step ids are shown, and a run's plan never changes: see RunService._steps).
RUN_VIEW = (
    RunRow.id,
    RunRow.pipeline,
    RunRow.status,
    RunRow.details,
    # JSON columns read as their text and decoded by `loads` below (most are "{}" or "null")
    type_coerce(RunRow.parameters, Text).label("parameters"),
    type_coerce(RunRow.target, Text).label("target"),
    type_coerce(RunRow.outputs, Text).label("outputs"),
    RunRow.created_at,
    RunRow.started_at,
    RunRow.finished_at,
    RunRow.worker_id,
    RunRow.heartbeat_at,
    RunRow.attempts,
    RunRow.cancel_requested,
    RunRow.retry_of,
)
# built once, so their SQL is compiled once
_GET = select(*RUN_VIEW).where(RunRow.id == bindparam("id"))
_GET_WITH_PLAN = select(*RUN_VIEW, RunRow.plan).where(RunRow.id == bindparam("id"))
_PLANS = select(RunRow.id, RunRow.plan).where(RunRow.id.in_(bindparam("ids", expanding=True)))


_GET_PLAN = select(type_coerce(RunRow.plan, Text)).where(RunRow.id == bindparam("id"))


def _graph_step(step: dict[str, Any]) -> dict[str, Any]:
    placement = step.get("placement") or {}
    target = step.get("target") or {}
    return {
        "id": str(step.get("id")),
        "needs": [str(n) for n in step.get("needs") or []],
        "playbook": step.get("playbook"),
        "provider": placement.get("provider") or target.get("provider") or "local",
        "deployment": placement.get("deployment"),
    }


@functools.cache
def _listing(by_status: bool, by_pipeline: bool) -> tuple[Select[int], Select[*tuple[Any, ...]]]:
    """The count and page statements of a listing with these filters (built once each, values bound)."""
    cond = []
    if by_status:
        cond.append(RunRow.status == bindparam("status"))
    if by_pipeline:
        # a literal prefix: the value is escaped (`like_prefix`), so `%` and `_` are plain characters
        cond.append(RunRow.pipeline.startswith(bindparam("pipeline"), escape=LIKE_ESCAPE))
    where = and_(*cond) if cond else text("1=1")
    count = select(func.count()).select_from(RunRow).where(where)
    page = select(*RUN_VIEW).where(where).order_by(RunRow.created_at.desc())
    return count, page.limit(bindparam("limit")).offset(bindparam("offset"))


LIKE_ESCAPE = "\\"


def like_prefix(value: str) -> str:
    """`value` escaped for a LIKE pattern with ESCAPE LIKE_ESCAPE: its `%`, `_` and escape characters
    match themselves."""
    for c in (LIKE_ESCAPE, "%", "_"):
        value = value.replace(c, LIKE_ESCAPE + c)
    return value


STEP_CACHE_MAX = 50_000  # runs whose step ids are kept in memory; emptied when it would grow past this


def loads(value: Any) -> Any:
    """A JSON column's value from its text (or as it is when the driver already decoded it)."""
    if not isinstance(value, str):
        return value
    if value == "{}":
        return {}
    return None if value == "null" else json.loads(value)


def _same(value: Any) -> Any:
    return value


def step_ids(plan: dict[str, Any]) -> tuple[str, ...]:
    return tuple(s.get("id") for s in plan.get("steps", []))


def run_json(
    row: RunRow | AnyRow, steps: tuple[str, ...] | None = None, load: Callable[[Any], Any] = _same
) -> dict[str, Any]:
    """The API's view of a run (never the plan's internals beyond its step ids): of an ORM row, or of a
    Core row of the RUN_VIEW columns with the step ids given and `load=loads`."""
    return {
        "id": row.id,
        "pipeline": row.pipeline,
        "status": row.status,
        "details": row.details,
        "parameters": load(row.parameters),
        "target": load(row.target),
        "steps": list(step_ids(row.plan) if steps is None else steps),
        "outputs": load(row.outputs),
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "worker_id": row.worker_id,
        "heartbeat_at": row.heartbeat_at,
        "attempts": row.attempts,
        "cancel_requested": row.cancel_requested,
        "retry_of": row.retry_of,
    }


def event_json(row: EventRow) -> dict[str, Any]:
    return {"seq": row.seq, "type": row.type, "step": row.step, "ts": row.ts, "data": row.data}


class RunService(ClaimOps):
    """Every operation on runs, over one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.on_created: Callable[[], None] | None = None  # e.g. wake this process's idle workers
        # run id -> its plan's step ids. A plan is written once, when its run is created, and run ids are
        # never reused, so this never goes stale; it spares the read paths decoding plans (most of a
        # listing's cost otherwise).
        self._steps: dict[str, tuple[str, ...]] = {}
        self.secret_values = None  # the vault's SecretStore.values, set by the gateway (see ClaimOps)
        self.route_secrets = None  # the model routes' key secret names, set by the gateway (see ClaimOps)
        self.route_check: Callable[[Plan], list[Problem]] | None = None  # set by the gateway
        self.notify_targets: RunTargets | None = None  # set by the gateway: a run's notification targets
        self._redactors = {}

    def _remember(self, run_id: str, plan: dict[str, Any]) -> tuple[str, ...]:
        steps = step_ids(plan)
        if len(self._steps) >= STEP_CACHE_MAX:
            self._steps.clear()
        self._steps[run_id] = steps
        return steps

    # -- what users do -------------------------------------------------------------------------------
    def create(
        self,
        pipeline: Inline,
        parameters: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
        retry_of: str | None = None,
        keep: bool = False,
        notify: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Compile (SpecError with located problems when invalid) and queue a run (`keep`: what it
        provisions stays after its end, until `destroy`; `notify`: who hears of its end, instead of its
        pipeline's `spec.notify`; the answer then carries `notify_secret` when a signed target uses it)."""
        plan = prepare(pipeline, parameters, target)
        if self.route_check is not None and (missing := self.route_check(plan)):
            raise SpecError(missing)  # a model route its litellm steps name is not configured here
        if retry_of is not None and notify is None:
            notify = []  # a retry keeps its run's targets (copied below), not the pipeline's of now
        targets = self.notify_targets.prepare(plan, notify) if self.notify_targets is not None else None
        plan_json = plan.to_json()
        row = RunRow(
            id=new_run_id(),
            pipeline=plan.root,
            spec=None if isinstance(pipeline, str) else pipeline,
            plan=plan_json,
            target_label=plan_target(plan_json),
            parameters=dict(parameters or {}),
            target=target,
            status="queued",
            created_at=time.time(),
            attempts=0,
            cancel_requested=False,
            retry_of=retry_of,
            keep=keep,
        )
        with self.db.session() as s:
            s.add(row)
            if targets is not None and self.notify_targets is not None:
                s.add_all(self.notify_targets.rows(targets, row.id))
            if retry_of is not None and self.notify_targets is not None:
                s.add_all(self.notify_targets.copies(s, retry_of, row.id))
            if self.db.dialect == "postgresql":  # delivered at commit to every listening worker process
                s.execute(text(f"NOTIFY {QUEUED_CHANNEL}"))
        if self.on_created is not None:
            self.on_created()
        answer = run_json(row, self._remember(row.id, row.plan))
        if targets is not None and targets.shown_secret:
            answer["notify_secret"] = targets.shown_secret
        return answer

    def get(self, run_id: str) -> dict[str, Any]:
        steps = self._steps.get(run_id)
        with self.db.read() as c:
            row = c.execute(_GET if steps is not None else _GET_WITH_PLAN, {"id": run_id}).first()
        if row is None:
            raise RunNotFound(run_id)
        return run_json(row, steps if steps is not None else self._remember(run_id, row.plan), loads)

    def list_runs(
        self, status: str | None = None, pipeline: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first; returns one page and the total matching."""
        count, page = _listing(bool(status), bool(pipeline))
        prefix = like_prefix(pipeline) if pipeline else None
        params = {"status": status, "pipeline": prefix, "limit": limit, "offset": offset}
        with self.db.read() as c:  # one snapshot: the page and the total agree
            total = int(c.scalar(count, params) or 0)
            rows = c.execute(page, params).all()
            steps = {r.id: self._steps.get(r.id) for r in rows}
            missing = [i for i, known in steps.items() if known is None]
            if missing:  # same snapshot: every row of the page has its plan
                for i, plan in c.execute(_PLANS, {"ids": missing}):
                    steps[i] = self._remember(i, plan)
        return [run_json(r, steps[r.id] or (), loads) for r in rows], total

    def graph(self, run_id: str) -> list[dict[str, Any]]:
        """The run's steps as a graph, from its compiled plan: each step's id, the steps it needs, its
        playbook and where it was placed (provider, deployment); for ray steps, the node that ran their
        last attempt (`node`: id, ip, hostname; None until one ended). Nothing else of the plan (its bound
        parameters may hold values a viewer of the run page need not see)."""
        with self.db.read() as c:
            plan = c.execute(_GET_PLAN, {"id": run_id}).scalar()
            if plan is None:
                raise RunNotFound(run_id)
            steps = [_graph_step(s) for s in loads(plan).get("steps", [])]
            if any(s["provider"] == "ray" for s in steps):  # where each ray step ran, from its end events
                ends = c.execute(
                    select(EventRow.step, EventRow.data)
                    .where(EventRow.run_id == run_id, EventRow.type.in_(("step.finished", "step.failed")))
                    .order_by(EventRow.seq)
                )
                nodes = {step: data.get("node") for step, data in ends if isinstance(data, dict)}
                for s in steps:
                    node = nodes.get(s["id"])
                    s["node"] = (
                        {k: str(node[k]) for k in ("id", "ip", "hostname") if k in node} if node else None
                    )
        return steps

    def cancel(self, run_id: str) -> dict[str, Any]:
        """A queued run is cancelled at once; a running one is asked to stop (its worker ends it)."""
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            if row.status in TERMINAL:
                raise RunStateError(f"run {run_id} is already {row.status}")
            if row.status == "queued":
                row.status, row.details, row.finished_at = (
                    "cancelled",
                    "cancelled before it started",
                    time.time(),
                )
                record_end(s, row)
            else:
                row.cancel_requested = True
            return run_json(row)

    def retry(self, run_id: str) -> dict[str, Any]:
        """A new run of the same spec, parameters, target and `keep` (the old one must have ended)."""
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            if row.status not in TERMINAL:
                raise RunStateError(f"run {run_id} is {row.status}: cancel it or wait for it to end")
            source: Inline = row.spec if row.spec is not None else row.pipeline
            parameters, target, keep = row.parameters, row.target, bool(row.keep)
        return self.create(source, parameters, target, retry_of=run_id, keep=keep)

    def events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Events with seq > after, in order."""
        with self.db.session() as s:
            if s.get(RunRow, run_id) is None:
                raise RunNotFound(run_id)
            rows = s.scalars(
                select(EventRow)
                .where(EventRow.run_id == run_id, EventRow.seq > after)
                .order_by(EventRow.seq)
                .limit(limit)
            )
            return [event_json(r) for r in rows]

    # -- what workers do -----------------------------------------------------------------------------
    def claim(self, worker_id: str) -> dict[str, Any] | None:
        """Take the oldest queued run (status -> running); None when the queue is empty.

        PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` then UPDATE, so concurrent workers never wait on
        each other's candidate. SQLite: one atomic `UPDATE ... WHERE id = (oldest) AND status = 'queued'`
        (writers are serialised by BEGIN IMMEDIATE)."""
        now = time.time()
        taken = {
            "status": "running",
            "worker_id": worker_id,
            "heartbeat_at": now,
            "started_at": func.coalesce(RunRow.started_at, now),
            "attempts": RunRow.attempts + 1,
        }
        oldest = select(RunRow.id).where(RunRow.status == "queued").order_by(RunRow.created_at).limit(1)
        with self.db.session() as s:
            if self.db.dialect == "postgresql":
                claimed = s.scalar(oldest.with_for_update(skip_locked=True))
                if claimed is not None:
                    s.execute(update(RunRow).where(RunRow.id == claimed).values(**taken))
            else:
                claimed = s.execute(
                    update(RunRow)
                    .where(RunRow.id == oldest.scalar_subquery(), RunRow.status == "queued")
                    .values(**taken)
                    .returning(RunRow.id)
                ).scalar()
            if claimed is None:
                return None
            row = s.get(RunRow, claimed)
            assert row is not None
            s.refresh(row)
            if row.started_at == now:  # its first start
                record_start(s, row)
            return run_json(row) | {"plan": row.plan, "keep": bool(row.keep)}

    def artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The artifact records of a run ({} while it runs, or when it produced none)."""
        with self.db.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(run_id)
            return dict(row.artifacts or {})
