"""`/health` (no credential) and `/`, a tiny page linking to the API docs (keeps a `?token=` for the UI)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from mlops_nocode.api.schemas import HealthResponse

router = APIRouter(tags=["health"])

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MLOps No-Code</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>MLOps No-Code Platform</h1>
<p id="who">Not signed in: open the login link <code>mlops up</code> printed.</p>
<ul><li><a href="/docs">API documentation (Swagger UI)</a></li><li><a href="/redoc">ReDoc</a></li>
<li><a href="/openapi.json">OpenAPI schema</a></li></ul>
<script>
const t = new URLSearchParams(location.search).get("token");
if (t) { localStorage.setItem("mlops_token", t); history.replaceState(null, "", "/"); }
if (localStorage.getItem("mlops_token")) {
  document.getElementById("who").textContent =
    "Signed in: your key is kept in this browser; use it as 'Authorize' (Bearer) in the API docs.";
}
</script></body></html>
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@router.get("/health", response_model=HealthResponse, summary="Liveness (no credential needed)")
def health() -> HealthResponse:
    """Answers while the gateway is up."""
    return HealthResponse(status="ok", timestamp=now_iso())


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home() -> str:
    """A small page linking to the API docs."""
    return PAGE
