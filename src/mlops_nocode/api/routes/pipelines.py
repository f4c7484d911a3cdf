"""The blueprint's endpoints, with its shapes: deploy a pipeline (a run) and read its status."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response, status

from mlops_nocode.api.responses import json_answer
from mlops_nocode.api.schemas import DeployResponse, ErrorOut, LaunchRequest, StatusResponse
from mlops_nocode.api.state import Gateway, gateway

router = APIRouter(prefix="/pipelines", tags=["pipelines (blueprint)"])


@router.post(
    "/deploy",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeployResponse,
    response_model_exclude_none=True,  # the blueprint's shape, plus `notify_secret` only when there is one
    responses={422: {"description": "invalid spec, with located problems", "model": ErrorOut}},
)
def deploy(body: LaunchRequest, gw: Gateway = Depends(gateway)) -> DeployResponse:
    """Validate, compile and queue a run of a pipeline (a ref or an inline spec). The run id is the
    `pipeline_id` to poll; or let `notify` (else the pipeline's `spec.notify`) say when it ends."""
    run = gw.runs.create(
        body.pipeline, body.parameters, body.target_dict(), keep=body.keep, notify=body.notify_list()
    )
    return DeployResponse(
        pipeline_id=run["id"],
        status=run["status"],
        message=f"{run['pipeline']} queued ({len(run['steps'])} steps)",
        notify_secret=run.get("notify_secret"),
    )


@router.get(
    "/{pipeline_id}/status", response_model=StatusResponse, responses={404: {"description": "no such run"}}
)
async def pipeline_status(pipeline_id: str, gw: Gateway = Depends(gateway)) -> Response:
    """queued, running, succeeded, failed or cancelled; `details` says why a run failed."""
    run = await gw.read(gw.runs.get, pipeline_id)
    stamp = run["finished_at"] or run["heartbeat_at"] or run["started_at"] or run["created_at"]
    answer = {
        "pipeline_id": run["id"],
        "status": run["status"],
        "details": run["details"],
        "timestamp": datetime.fromtimestamp(stamp, UTC).isoformat(),
    }
    return json_answer(answer, StatusResponse)
