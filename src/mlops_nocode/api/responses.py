"""JSON answers for the hottest read routes, serialised once instead of validated against their model.

FastAPI validates and serialises a route's return value through its `response_model`; returning a
`Response` skips both. The routes that use this build their content from `runs.service.run_json`, which
already has the model's shape (the schema tests check it). Values JSON cannot carry (NaN, infinities)
take the model's path, which writes them as null, as every other route does.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response
from pydantic import BaseModel


def json_answer(content: dict[str, Any], model: type[BaseModel], status_code: int = 200) -> Response:
    """`content` as a JSON response; through `model` only when plain JSON cannot carry it."""
    try:
        body = json.dumps(content, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    except (ValueError, TypeError):
        body = model.model_validate(content).model_dump_json().encode()
    return Response(body, status_code, media_type="application/json")
