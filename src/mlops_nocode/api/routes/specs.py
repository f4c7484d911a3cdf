"""/api/v1/validate, /api/v1/plan and /api/v1/targets: check and compile without running anything."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, HTTPException, Path, status

from mlops_nocode.api.examples import PLAN, json_example
from mlops_nocode.api.schemas import ErrorOut, LaunchRequest, ProblemOut, TargetOut, ValidateResponse
from mlops_nocode.providers import targets as listing
from mlops_nocode.runs.compiling import prepare
from mlops_nocode.runs.flow import render

router = APIRouter(tags=["specs"])
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid, with located problems", "model": ErrorOut}
}


@router.post("/validate", response_model=ValidateResponse, responses=INVALID)
def validate(body: LaunchRequest) -> ValidateResponse:
    """Validate a ref or inline spec with its parameters: schema, refs, parameters, types, cycles."""
    plan = prepare(body.pipeline, body.parameters, body.target_dict(), check_only=True)
    warnings = [ProblemOut(what=w.what, where=w.where, fix=w.fix) for w in plan.warnings]
    return ValidateResponse(status="valid", pipeline=plan.root, steps=len(plan.steps), warnings=warnings)


@router.post("/plan", responses={**INVALID, **json_example(PLAN)})
def plan(body: LaunchRequest) -> dict[str, Any]:
    """The compiled, flattened and placed plan (what a run would execute), with each deployment's bundle
    (the files that would be applied, the resources that would be created) and the estimated cost;
    creates nothing."""
    placed = prepare(body.pipeline, body.parameters, body.target_dict())
    return placed.to_json() | render(placed).to_json()


@router.get("/targets", response_model=list[TargetOut])
def targets() -> list[dict[str, Any]]:
    """Every target provider: installed or not, its state (credentials and terraform present or missing,
    by name only) and its offers with prices, cheapest first (what `mlops targets --json` shows)."""
    return listing.targets(os.environ)


@router.get(
    "/targets/{provider}",
    response_model=TargetOut,
    responses={404: {"description": "unknown provider", "model": ErrorOut}},
)
def target(provider: str = Path(max_length=64)) -> dict[str, Any]:
    """One target provider, as in the list."""
    try:
        return listing.targets(os.environ, provider)[0]
    except listing.UnknownProvider:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown provider {provider[:64]!r}") from None
