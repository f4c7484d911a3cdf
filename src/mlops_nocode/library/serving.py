"""The `serve-model` playbook's service: a scikit-learn model file (library/modelfile.py) behind a REST API.

GET /health (200 once the model is loaded), GET /metadata (estimator, task, features, classes, target),
POST /predict with {"rows": [[...], ...]} (values in the order of /metadata's features) or
{"records": [{feature: value}, ...]} -> {"predictions": [...]} plus, for classifiers that give them,
{"classes": [...], "probabilities": [[...], ...]}. Bad input answers 422 saying where and why; a body
larger than `max_body_bytes` answers 413 before it is read; more rows than `max_rows` answers 422.
FastAPI builds the API (the gateway's framework: validation with located errors, OpenAPI at /docs).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops_nocode.library.modelfile import load_model
from mlops_nocode.library.reporting import jsonable

Scalar = float | int | str | bool | None


class PredictIn(BaseModel):
    """The body of POST /predict: exactly one of `rows` and `records`."""

    model_config = ConfigDict(extra="forbid")

    rows: list[list[Scalar]] | None = Field(None, description="rows of values, in the features' order")
    records: list[dict[str, Scalar]] | None = Field(None, description="rows as {feature: value}")


def model_app(inputs: dict[str, Any], params: dict[str, Any]) -> Any:
    """The ASGI app serving the model of input `model` (serve-model's factory)."""
    from fastapi import FastAPI, HTTPException

    max_rows = int(params.get("max_rows") or 10_000)
    max_body = int(params.get("max_body_bytes") or 1 << 20)
    estimator, meta = load_model(inputs["model"])
    features: list[str] = [str(f) for f in meta.get("features") or []]
    if not hasattr(estimator, "predict"):
        raise ValueError("this model makes no predictions (it is a transformer): serve a fitted predictor")
    has_proba = meta.get("task") == "classification" and hasattr(estimator, "predict_proba")

    app = FastAPI(title=f"model {meta.get('estimator', '')}", version="1.0.0")
    app.add_middleware(_BodyLimit, limit=max_body)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        keep = ("estimator", "task", "features", "target", "classes", "sklearn_version")
        return {k: jsonable(meta.get(k)) for k in keep if k in meta}

    @app.post("/predict")
    def predict(body: PredictIn) -> dict[str, Any]:
        frame = _frame(body.rows, body.records, features, max_rows)
        try:
            out: dict[str, Any] = {"predictions": jsonable(list(estimator.predict(frame)))}
            if has_proba:
                out["classes"] = jsonable(list(estimator.classes_))
                out["probabilities"] = jsonable(estimator.predict_proba(frame).tolist())
        except (ValueError, TypeError) as e:  # values the model cannot take (e.g. text for a number)
            raise HTTPException(422, f"the model cannot predict these rows: {str(e)[:300]}") from None
        return out

    return app


def _frame(
    rows: list[list[Scalar]] | None, records: list[dict[str, Scalar]] | None, features: list[str], most: int
) -> Any:
    """The rows as a DataFrame with the model's feature columns; HTTPException 422 saying what is wrong."""
    import pandas as pd
    from fastapi import HTTPException

    if (rows is None) == (records is None):
        raise HTTPException(422, 'give exactly one of "rows" (lists of values) and "records" (objects)')
    given = rows if rows is not None else records
    assert given is not None
    if not given:
        raise HTTPException(422, "no rows to predict: give at least one")
    if len(given) > most:
        raise HTTPException(422, f"{len(given)} rows: at most {most} per request (split them)")
    if rows is not None:
        for i, row in enumerate(rows):
            if features and len(row) != len(features):
                raise HTTPException(
                    422,
                    f"rows[{i}] has {len(row)} values; the model takes {len(features)}: "
                    + ", ".join(features),
                )
            _finite(row, f"rows[{i}]")
        return pd.DataFrame(rows, columns=features or None)
    assert records is not None
    for i, rec in enumerate(records):
        missing = [f for f in features if f not in rec]
        extra = [k for k in rec if k not in features]
        if missing or (features and extra):
            what = f"lacks {', '.join(missing)}" if missing else f"has unknown columns {', '.join(extra)}"
            raise HTTPException(422, f"records[{i}] {what[:300]} (the model takes: {', '.join(features)})")
        _finite(list(rec.values()), f"records[{i}]")
    return pd.DataFrame(records, columns=features or None)


def _finite(values: list[Scalar], where: str) -> None:
    from fastapi import HTTPException

    for j, v in enumerate(values):
        if isinstance(v, float) and not math.isfinite(v):
            raise HTTPException(422, f"{where}[{j}] is {v}: values must be finite numbers")


class _BodyLimit:
    """Answers 413 to a request body larger than `limit` bytes (by Content-Length, or as it streams)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0
        started = False

        async def limited() -> dict[str, Any]:
            nonlocal seen
            msg: dict[str, Any] = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        async def tracked(msg: dict[str, Any]) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, tracked)
        except _TooLarge:
            if not started:
                await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"the request body is larger than {limit} bytes: send fewer rows"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
