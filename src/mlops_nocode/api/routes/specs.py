"""/api/v1/validate, /api/v1/plan and /api/v1/targets: check and compile without running anything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mlops_nocode.api.examples import PLAN, TARGETS, json_example
from mlops_nocode.api.schemas import ErrorOut, LaunchRequest, ProblemOut, ValidateResponse
from mlops_nocode.providers.registry import AVAILABLE, PLANNED
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


@router.get("/targets", responses=json_example(TARGETS))
def targets() -> list[dict[str, Any]]:
    """Target providers: available now, and planned."""
    return [{"provider": p, "available": True} for p in AVAILABLE] + [
        {"provider": p, "available": False} for p in PLANNED
    ]
