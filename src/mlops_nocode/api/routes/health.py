"""`/health`: liveness, no credential (the home page and the browser login are in routes.session)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from mlops_nocode.api.schemas import HealthResponse

router = APIRouter(tags=["health"])


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@router.get("/health", response_model=HealthResponse, summary="Liveness (no credential needed)")
def health() -> HealthResponse:
    """Answers while the gateway is up."""
    return HealthResponse(status="ok", timestamp=now_iso())
