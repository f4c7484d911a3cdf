"""The hot read routes' JSON answers: the same JSON the response model would give, NaN included."""

from __future__ import annotations

import json
import math

from mlops_nocode.api.responses import json_answer
from mlops_nocode.api.schemas import Run, RunPage

RUN = {
    "id": "20261127-120000-abcdef",
    "pipeline": "pipeline/iris-classifier@1.0.0",
    "status": "succeeded",
    "details": None,
    "parameters": {"estimator": "ünïcode"},
    "target": None,
    "steps": ("load", "train"),
    "outputs": {"accuracy": 0.921},
    "created_at": 1795000000.25,
    "started_at": 1795000000.5,
    "finished_at": 1795000004.0,
    "worker_id": "host:1:t0",
    "heartbeat_at": None,
    "attempts": 1,
    "cancel_requested": False,
    "retry_of": None,
}


def test_plain_content_gives_the_models_json() -> None:
    page = {"items": [RUN], "total": 1, "limit": 50, "offset": 0}
    fast = json.loads(json_answer(page, RunPage).body)
    assert fast == json.loads(RunPage.model_validate(page).model_dump_json())


def test_values_json_cannot_carry_go_through_the_model() -> None:
    run = {**RUN, "outputs": {"loss": math.nan, "best": math.inf}}
    answer = json_answer(run, Run)
    assert json.loads(answer.body)["outputs"] == {"loss": None, "best": None}
    assert answer.media_type == "application/json"
