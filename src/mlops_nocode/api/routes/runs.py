"""/api/v1/runs: create, list (filters, pagination), get, cancel, retry, events, and logs as SSE."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status
from fastapi.responses import StreamingResponse

from mlops_nocode.api.examples import SSE, json_example
from mlops_nocode.api.responses import json_answer
from mlops_nocode.api.schemas import LaunchRequest, Run, RunEvent, RunGraph, RunLaunched, RunPage, RunStatus
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.deploying import destroy, provider_env
from mlops_nocode.runs.deployrecords import DeploymentRecords
from mlops_nocode.runs.errors import RunStateError
from mlops_nocode.runs.models import TERMINAL
from mlops_nocode.runtime.events import EVENT_TYPES

router = APIRouter(prefix="/runs", tags=["runs"])
_DEPLOYMENT = {
    "name": "k3s",
    "provider": "k3s",
    "status": "running",
    "details": None,
    "price_per_hour": 0.25,
    "provisioned": {
        "deployment": "k3s",
        "provider": "k3s",
        "resources": [{"type": "kubernetes_job_v1", "name": "runner"}],
        "workdir": "/var/lib/mlops/deployments/20261130-061657-82d7dc/k3s",
        "handle": {"namespace": "mlops-20261130-061657-82d7dc"},
    },
    "updated_at": 1795000000.0,
}
DEPLOYMENTS = [_DEPLOYMENT]
DESTROYED = [_DEPLOYMENT | {"status": "destroyed"}]
INFRA = [
    {
        "step": "workspace",
        "workdir": "/var/lib/mlops/runs/20261130-061657-82d7dc/terraform/workspace",
        "resources": ["terraform_data.workspace", "terraform_data.access"],
    }
]
INFRA_DESTROYED = [
    {"workdir": "/var/lib/mlops/runs/20261130-061657-82d7dc/terraform/workspace", "status": "destroyed"},
    {
        "workdir": "/var/lib/mlops/runs/20261130-061657-82d7dc/terraform/bucket",
        "status": "failed",
        "problem": {
            "what": "variable 'token' took secret 'BUCKET_TOKEN', which is not set",
            "where": "/var/lib/mlops/runs/20261130-061657-82d7dc/terraform/bucket",
            "fix": "store it with PUT /api/v1/secrets/BUCKET_TOKEN, then destroy again",
        },
    },
]
MAX_INT = 2**62  # larger numbers overflow the databases' 64-bit integers (a 500): 422 instead
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such run"}}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=RunLaunched)
def create_run(body: LaunchRequest, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Validate, compile and queue a run of a ref or an inline spec, with parameters, a target and who
    hears of its end (`notify`, else the pipeline's `spec.notify`)."""
    return gw.runs.create(
        body.pipeline, body.parameters, body.target_dict(), keep=body.keep, notify=body.notify_list()
    )


@router.get("", response_model=RunPage)
async def list_runs(
    status_: RunStatus | None = Query(default=None, alias="status"),
    pipeline: str | None = Query(default=None, max_length=300, description="pipeline ref prefix"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=MAX_INT),
    gw: Gateway = Depends(gateway),
) -> Response:
    """Newest first, filtered by status and pipeline, one page at a time."""
    items, total = await gw.read(gw.runs.list_runs, status_, pipeline, limit, offset)
    return json_answer({"items": items, "total": total, "limit": limit, "offset": offset}, RunPage)


@router.get("/{run_id}", response_model=Run, responses=NOT_FOUND)
async def get_run(run_id: str, gw: Gateway = Depends(gateway)) -> Response:
    """One run."""
    return json_answer(await gw.read(gw.runs.get, run_id), Run)


@router.get("/{run_id}/graph", response_model=RunGraph, responses=NOT_FOUND)
async def run_graph(run_id: str, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """The run's steps with the steps each needs (the DAG's edges), playbook and placement."""
    return {"run": run_id, "steps": await gw.read(gw.runs.graph, run_id)}


@router.post(
    "/{run_id}/cancel", response_model=Run, responses={**NOT_FOUND, 409: {"description": "already ended"}}
)
def cancel_run(run_id: str, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Cancel: a queued run ends at once; a running one stops its steps and ends `cancelled`."""
    run = gw.runs.cancel(run_id)
    if run["status"] == "cancelled":  # ended here, not by a worker: its notifications start here
        gw.notifier.run_ended(run_id)
    return run


@router.post(
    "/{run_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Run,
    responses={**NOT_FOUND, 409: {"description": "still queued or running"}},
)
def retry_run(run_id: str, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """A new run of the same spec, parameters and target (cached steps are reused)."""
    return gw.runs.retry(run_id)


@router.get("/{run_id}/deployments", responses={**NOT_FOUND, **json_example(DEPLOYMENTS)})
def run_deployments(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """The run's deployments: provider, state, hourly price, and what was provisioned for each."""
    return DeploymentRecords(gw.runs.db).of(run_id)


@router.post("/{run_id}/destroy", responses={**NOT_FOUND, **json_example(DESTROYED)})
def destroy_run(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Tear down everything the run provisioned (a running run is cancelled first); always possible,
    also after a failure. Answers the deployments as recorded afterwards."""
    run = gw.runs.get(run_id)
    if run["status"] not in TERMINAL:
        with contextlib.suppress(RunStateError):  # it ended meanwhile
            gw.runs.cancel(run_id)
    return destroy(DeploymentRecords(gw.runs.db), run_id, provider_env())


@router.get("/{run_id}/infra", responses={**NOT_FOUND, **json_example(INFRA)})
def run_infra(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """What the run's terraform steps hold in their state now, step by step (an ephemeral step's is
    empty once the run ended); [] when the run has no terraform step."""
    from mlops_nocode.runtime.executors.terraform import state_of, workdirs

    gw.runs.get(run_id)  # 404 for no such run
    try:
        found = workdirs(gw.settings.home, run_id)
    except ValueError:
        return []
    return [state_of(workdir) for workdir in found]


@router.post("/{run_id}/infra/destroy", responses={**NOT_FOUND, **json_example(INFRA_DESTROYED)})
def destroy_run_infra(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """Destroy what the run's terraform steps created and kept (those not `ephemeral`, or left by a
    failed destroy); a running run is cancelled first. The secrets their variables took come from the
    secret store. One entry per terraform step: destroyed, or failed with the reason (retry later); []
    when the run has none. `mlops infra destroy RUN_ID` does the same on the command line."""
    from mlops_nocode.iac.terraform import TerraformError
    from mlops_nocode.runtime.executors.terraform import destroy_from_env, secrets_of, workdirs

    run = gw.runs.get(run_id)
    if run["status"] not in TERMINAL:
        with contextlib.suppress(RunStateError):
            gw.runs.cancel(run_id)
    try:
        found = workdirs(gw.settings.home, run_id)
    except ValueError:
        return []
    out: list[dict[str, Any]] = []
    for workdir in found:
        names = secrets_of(workdir)
        environ = gw.secrets.values(names)
        if missing := [n for n in names if n not in environ]:
            problem = {
                "what": f"the apply took secret(s) {', '.join(missing)}, which the secret store lacks",
                "where": str(workdir),
                "fix": f"store the values the apply used with PUT /api/v1/secrets/{missing[0]} (each), "
                "then destroy again",
            }
            out.append({"workdir": str(workdir), "status": "failed", "problem": problem})
            continue
        try:
            destroy_from_env(workdir, environ, workdir / "destroy.log")
            out.append({"workdir": str(workdir), "status": "destroyed"})
        except TerraformError as e:
            problem = {"what": e.what, "where": e.where, "fix": e.fix}
            out.append({"workdir": str(workdir), "status": "failed", "problem": problem})
    return out


@router.get("/{run_id}/events", response_model=list[RunEvent], responses=NOT_FOUND)
def run_events(
    run_id: str,
    after: int = Query(default=0, ge=0, le=MAX_INT, description="only events with seq > after"),
    limit: int = Query(default=1000, ge=1, le=10000),
    gw: Gateway = Depends(gateway),
) -> list[dict[str, Any]]:
    """The run's events so far, in order."""
    return gw.runs.events(run_id, after, limit)


@router.get(
    "/{run_id}/logs",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"example": SSE}}, "description": "Server-Sent Events"},
        **NOT_FOUND,
    },
)
async def run_logs(
    run_id: str,
    after: int = Query(default=0, ge=0, le=MAX_INT),
    type_: str | None = Query(
        default=None, alias="type", max_length=100, description="only this event type, e.g. log"
    ),
    last_event_id: str | None = Header(default=None),
    gw: Gateway = Depends(gateway),
) -> StreamingResponse:
    """The run's events as Server-Sent Events (`id` = seq, `event` = type), live until the run ends,
    then an `end` event with the final status. Resumes after `Last-Event-ID`."""
    if type_ is not None and type_ not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            [
                {
                    "loc": ["query", "type"],
                    "msg": f"unknown event type {type_!r}: use one of {known}",
                    "type": "enum",
                }
            ],
        )
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    await anyio.to_thread.run_sync(gw.runs.get, run_id)  # 404 before the stream starts
    return StreamingResponse(
        _stream(gw, run_id, start, type_),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


async def _stream(gw: Gateway, run_id: str, after: int, only: str | None) -> AsyncIterator[str]:
    poll = gw.settings.poll_seconds
    idle = 0.0
    while True:
        run = await anyio.to_thread.run_sync(gw.runs.get, run_id)
        events = await anyio.to_thread.run_sync(gw.runs.events, run_id, after, 500)
        chunk = []
        for e in events:
            after = e["seq"]
            if only is None or e["type"] == only:
                chunk.append(f"id: {e['seq']}\nevent: {e['type']}\ndata: {json.dumps(e, default=str)}\n\n")
        if chunk:  # one write per read: a client gets a burst of events at once, not one packet each
            yield "".join(chunk)
        if events:
            idle = 0.0
            continue
        if run["status"] in TERMINAL:
            yield f"event: end\ndata: {json.dumps({'status': run['status'], 'details': run['details']})}\n\n"
            return
        idle += poll
        if idle >= 15.0:
            idle = 0.0
            yield ": keep-alive\n\n"
        await anyio.sleep(poll)
