"""Error answers (never a 500 for bad input) and the request body size limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_nocode.catalogue.git import Conflict
from mlops_nocode.runs.service import RunNotFound, RunStateError
from mlops_nocode.spec import SpecError
from mlops_nocode.spec.refs import RefError


def _problems(e: SpecError) -> list[dict[str, str]]:
    return e.to_json()


def install_error_handlers(app: FastAPI) -> None:
    """422 with locations for invalid bodies and specs, 409 for conflicts, 404 for unknown runs."""

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    async def spec_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SpecError)
        code = 409 if isinstance(exc, Conflict) else 422
        return JSONResponse(
            {"detail": "invalid" if code == 422 else "conflict", "problems": _problems(exc)}, code
        )

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"no run {exc}"}, status_code=404)

    async def state_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def ref_error(request: Request, exc: Exception) -> JSONResponse:
        # a reference or version that a route did not check itself (those locate it): still a 422
        problem = {"what": str(exc), "where": "request", "fix": "write KIND/NAME or KIND/NAME@VERSION"}
        return JSONResponse({"detail": "invalid", "problems": [problem]}, 422)

    async def too_deep(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": "nested too deeply", "type": "too_deep"}]}, 400
        )

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(SpecError, spec_error)
    app.add_exception_handler(RunNotFound, not_found)
    app.add_exception_handler(RunStateError, state_error)
    app.add_exception_handler(RecursionError, too_deep)
    app.add_exception_handler(RefError, ref_error)


class BodyLimit:
    """Refuse request bodies larger than `limit` bytes with 413 (by Content-Length, or while reading)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, self.limit)


class _TooLarge(HTTPException):
    """Raised while reading an oversized body; FastAPI passes HTTPExceptions through as they are."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _too_large(send: Send, limit: int) -> None:
    import json

    body: dict[str, Any] = {
        "detail": [{"loc": ["body"], "msg": f"request body larger than {limit} bytes", "type": "too_large"}]
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
