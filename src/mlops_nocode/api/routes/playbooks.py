"""/api/v1/playbooks/try: a test run of a draft playbook on sample inputs (the web editor's Test run)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, status
from pydantic import ConfigDict, Field, field_validator

from mlops_nocode.api.schemas import MAX_DEPTH, ErrorOut, Run, Strict, depth
from mlops_nocode.api.state import Gateway, gateway
from mlops_nocode.runs.trydraft import try_documents
from mlops_nocode.runs.trysamples import samples_from_runs

router = APIRouter(prefix="/playbooks", tags=["playbooks"])
EXAMPLE: dict[str, Any] = {
    "playbook": {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "shout", "version": "0.1.0"},
        "spec": {
            "runtime": "python",
            "python": {
                "code": "import json\n\ndef main(ctx, text, times=2):\n    value = json.load(open(text))\n"
                '    ctx.log.info("got %s", value)\n    return {"shouted": value.upper() * times}\n',
                "entrypoint": "main",
            },
            "inputs": {"text": {"type": "text"}},
            "outputs": {"shouted": {"type": "text"}},
            "parameters": {"type": "object", "properties": {"times": {"type": "integer", "default": 2}}},
        },
    },
    "parameters": {"times": 3},
    "inputs": {"text": {"value": "hello"}},
}


class TryRequest(Strict):
    """A draft playbook (one spec document, not saved), its parameters, and one sample per input port:
    `{"value": JSON}` for value ports (text, json, metrics, any...), `{"filename", "text"}` or
    `{"filename", "base64"}` for file ports (file, dataset, model, directory), or for either
    `{"run": ID, "output": NAME}`: what an output of an earlier run holds."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    playbook: dict[str, Any]
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict, max_length=100)

    @field_validator("playbook", "parameters", "inputs")
    @classmethod
    def _not_too_deep(cls, v: Any) -> Any:
        if depth(v, MAX_DEPTH) > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        return v


@router.post(
    "/try",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Run,
    responses={422: {"description": "invalid draft or samples, with located problems", "model": ErrorOut}},
)
def try_playbook(body: TryRequest, gw: Gateway = Depends(gateway)) -> dict[str, Any]:
    """Queue a one-step run of the draft on this gateway's machine (target local): follow it with the
    runs API (events for logs and metrics, artifacts for its outputs). Nothing is saved."""
    limit = gw.settings.try_sample_max_bytes
    inputs = samples_from_runs(gw.runs, gw.settings.home, body.inputs, limit)
    docs = try_documents(body.playbook, inputs, body.parameters, limit)
    return gw.runs.create(docs, {}, {"provider": "local", "options": {}})
