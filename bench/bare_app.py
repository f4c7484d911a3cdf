"""The baseline of bench.gateway_load: a bare FastAPI app with one trivial JSON endpoint.

Served by `python -m uvicorn bench.bare_app:app` exactly as `mlops up` serves the gateway (one process,
uvicorn's default loop and HTTP parser, log level warning).
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}
