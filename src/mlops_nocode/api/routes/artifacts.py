"""/api/v1/runs/{id}/artifacts: a run's pipeline outputs, and downloading them (directories as .tar.gz)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse, Response, StreamingResponse

from mlops_nocode.api.schemas import Artifact
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.artifacts import (
    ArtifactMissing,
    ArtifactUnavailable,
    describe,
    holds_secret,
    iter_file,
    iter_targz,
    locate,
)

router = APIRouter(prefix="/runs", tags=["runs"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such run or artifact"}}


@router.get("/{run_id}/artifacts", response_model=list[Artifact], responses=NOT_FOUND)
async def list_artifacts(run_id: str, gw: Gateway = Depends(gateway)) -> list[dict[str, Any]]:
    """The run's pipeline outputs with their types and digests (empty until the run ends)."""
    recs = await anyio.to_thread.run_sync(gw.runs.artifacts, run_id)
    home = gw.settings.home
    return [await anyio.to_thread.run_sync(describe, home, n, r) for n, r in sorted(recs.items())]


@router.get(
    "/{run_id}/artifacts/{name}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}, "application/gzip": {}}},
        403: {"description": "withheld: the artifact holds the value of a secret its run used"},
        503: {"description": "the artifact is in the shared artifact store, which cannot be read now"},
        **NOT_FOUND,
    },
)
async def download_artifact(run_id: str, name: str, gw: Gateway = Depends(gateway)) -> Response:
    """The artifact's file, or its directory as a .tar.gz stream. An artifact holding the value of a
    secret its run used is withheld (403): a step's files are served as written, never rewritten."""
    recs = await anyio.to_thread.run_sync(gw.runs.artifacts, run_id)
    record = recs.get(name)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} has no artifact {name!r}")
    try:
        path = await anyio.to_thread.run_sync(locate, gw.settings.home, record)
    except ArtifactUnavailable as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(e)) from None
    except ArtifactMissing as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    redactor = await anyio.to_thread.run_sync(gw.runs.redactor, run_id)
    if record.get("withheld") or await anyio.to_thread.run_sync(
        holds_secret, path, redactor, record.get("digest")
    ):
        problem = {
            "what": f"artifact {name!r} holds the value of a secret its run used: it is withheld",
            "where": f"run {run_id} > outputs.{name}",
            "fix": "change the step so that it does not write secret values into its output files, "
            "then run it again",
        }
        return JSONResponse({"detail": "withheld", "problems": [problem]}, status.HTTP_403_FORBIDDEN)
    if path.is_dir():
        filename, media, body = f"{path.name}.tar.gz", "application/gzip", iter_targz(path)
        headers: dict[str, str] = {}
    else:
        filename, media, body = path.name, "application/octet-stream", iter_file(path)
        headers = {"Content-Length": str(path.stat().st_size)}
    headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    if record.get("digest"):
        headers["X-Artifact-Digest"] = f"sha256:{record['digest']}"
    return StreamingResponse(body, media_type=media, headers=headers)
