"""/api/v1/runs/{id}/report|finish|release: where Runners report, with the run token of their claim.

These routes take only run tokens (runs.runtoken), never API keys or user tokens: a Runner on a remote
target holds the power to report one run, nothing else.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import ConfigDict, Field

from mlops_nocode.api.schemas import Strict
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.deployrecords import DeploymentRecords
from mlops_nocode.runs.runtoken import InvalidRunToken, RunClaims, issue_run_token, verify_run_token
from mlops_nocode.runs.service import NewEvent, SeqGap
from mlops_nocode.runtime.events import EVENT_TYPES

MAX_EVENTS = 10_000
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired run token"},
    403: {"description": "the run token is for another run"},
    404: {"description": "no such run"},
    409: {"description": "the run is no longer this claim's (recovered elsewhere, or ended)"},
}


MAX_STEP_ID = 16_384


class EventIn(Strict):
    """One event, as the Runner emitted it."""

    type: Literal[tuple(sorted(EVENT_TYPES))]  # type: ignore[valid-type]
    # ids of pipelines nested MAX_NESTING_DEPTH levels: up to 64 characters a level
    step: str | None = Field(default=None, max_length=MAX_STEP_ID)
    ts: float = Field(ge=0, le=1e11)
    data: dict[str, Any] = Field(default_factory=dict)


class ReportIn(Strict):
    """A batch of events numbered from `first_seq` (null: after the stored ones); also the heartbeat."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "first_seq": 3,
                    "events": [
                        {"type": "step.started", "step": "train", "ts": 1795000000.5, "data": {}},
                        {"type": "metric", "step": "train", "ts": 1795000003.1, "data": {"accuracy": 0.92}},
                    ],
                }
            ]
        }
    )

    first_seq: int | None = Field(default=None, ge=1, le=2**62)
    events: list[EventIn] = Field(default_factory=list, max_length=MAX_EVENTS)


class ReportOut(Strict):
    """Whether the run should stop, the seq of the next event, and a fresh token near expiry."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cancel_requested": False, "next_seq": 5, "token": None}]}
    )

    cancel_requested: bool
    next_seq: int
    token: str | None = None


class FinishIn(Strict):
    """How the run ended."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "succeeded", "outputs": {"accuracy": 0.921}},
                {"status": "failed", "details": "step train failed: ValueError: no rows"},
            ]
        }
    )

    status: Literal["succeeded", "failed", "cancelled"]
    details: str | None = Field(default=None, max_length=4000)
    outputs: dict[str, Any] | None = None
    artifacts: dict[str, Any] | None = None


class EndOut(Strict):
    """Whether the gateway recorded it (false: the run had already ended or been handed over)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"recorded": True}]})

    recorded: bool


def run_claims(request: Request, run_id: str) -> RunClaims:
    """The run token's claims, for this run only."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing run token: send Authorization: Bearer <the run token of this claim>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    gw: Gateway = request.app.state.gateway
    try:
        claims = verify_run_token(gw.secret_key, credential.strip())
    except InvalidRunToken as e:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(e), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    if claims.run_id != run_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this run token is for another run")
    return claims


router = APIRouter(prefix="/runs", tags=["runner reports"], dependencies=[Depends(run_claims)])


@router.post("/{run_id}/report", response_model=ReportOut, responses=RESPONSES)
def report(
    run_id: str,
    body: ReportIn,
    claims: RunClaims = Depends(run_claims),
    gw: Gateway = Depends(gateway),
) -> dict[str, Any]:
    """Store a batch of events (those already stored are skipped) and beat the run's heartbeat."""
    events = [NewEvent(e.type, e.step, e.data, e.ts) for e in body.events]
    first_seq = None if claims.deployment else body.first_seq  # a run's Runners append side by side
    try:
        beat = gw.runs.report(run_id, claims.worker_id, claims.attempt, events, first_seq)
    except SeqGap as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(e)) from None
    token = None
    ttl = gw.settings.run_token_ttl
    if claims.expires - time.time() < ttl / 2:
        token = issue_run_token(
            gw.secret_key, run_id, claims.worker_id, claims.attempt, ttl, claims.deployment
        )
    return {"cancel_requested": beat.cancel_requested, "next_seq": beat.next_seq, "token": token}


@router.post("/{run_id}/finish", response_model=EndOut, responses=RESPONSES)
def finish(
    run_id: str,
    body: FinishIn,
    claims: RunClaims = Depends(run_claims),
    gw: Gateway = Depends(gateway),
) -> dict[str, Any]:
    """Record the end of the run (then its webhooks are sent); with a deployment's token, the end of
    that deployment's part (the run ends when its worker has seen every part end)."""
    if claims.deployment:
        ended = DeploymentRecords(gw.runs.db).runner_ended(
            run_id, claims.worker_id, claims.attempt, claims.deployment, body.status, body.details
        )
        return {"recorded": ended}
    recorded = gw.runs.finish(
        run_id, claims.worker_id, body.status, body.details, body.outputs, body.artifacts, claims.attempt
    )
    if recorded:
        gw.notifier.run_ended(run_id)
    return {"recorded": recorded}


@router.post("/{run_id}/release", response_model=EndOut, responses=RESPONSES)
def release(
    run_id: str, claims: RunClaims = Depends(run_claims), gw: Gateway = Depends(gateway)
) -> dict[str, Any]:
    """Give the run back to the queue (its worker is stopping); the claim does not count. A deployment's
    Runner cannot give back the whole run."""
    if claims.deployment:
        return {"recorded": False}
    return {"recorded": gw.runs.requeue(run_id, claims.worker_id, claims.attempt)}
