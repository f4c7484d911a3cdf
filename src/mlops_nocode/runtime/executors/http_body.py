"""An http step's response body as its output: a value (json, text, metrics...) read up to
STEP_VALUES_MAX_BYTES, or a file (file, dataset, model) streamed into the output folder up to
STEP_OUTPUT_MAX_BYTES. The try's deadline and a cancel stop the reading between chunks."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from mlops_nocode.runtime.attempt import VALUE_TYPES, StepFailure

if TYPE_CHECKING:
    import httpx

    from mlops_nocode.runtime.executors.jobs import StepThread


def read_body(job: StepThread, response: httpx.Response, name: str, deadline: float) -> Any:
    """The output `name` from the response's body (a value, or a file's name in the output folder)."""
    kind = job.a.step.outputs.get(name, "any")
    limits = job.ctx.limits
    if kind in VALUE_TYPES:
        cap, setting = int(limits.step_values_max_bytes), "STEP_VALUES_MAX_BYTES"
        data = bytearray()
        for chunk in _chunks(job, response, deadline, name, cap, setting, kind):
            data += chunk
        return _value(bytes(data), response, name, kind)
    cap, setting = int(limits.step_output_max_bytes), "STEP_OUTPUT_MAX_BYTES"
    path = job.a.out_dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in _chunks(job, response, deadline, name, cap, setting, kind):
            f.write(chunk)
    job.log(f"   body saved as output {name!r} ({path.stat().st_size} bytes)")
    return name


def _chunks(
    job: StepThread, response: httpx.Response, deadline: float, name: str, cap: int, setting: str, kind: str
) -> Any:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_big(name, kind, int(declared), cap, setting)
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > cap:
            raise _too_big(name, kind, size, cap, setting)
        job.check()
        if time.monotonic() > deadline:
            raise StepFailure(f"the response body of output {name!r} took longer than the request's timeout")
        yield chunk


def _too_big(name: str, kind: str, size: int, cap: int, setting: str) -> StepFailure:
    fix = "declare the output as a file" if setting == "STEP_VALUES_MAX_BYTES" else f"raise {setting}"
    return StepFailure(
        f"output {name!r} ({kind}): the response body ({size} bytes or more) is larger than {setting} "
        f"({cap} bytes): {fix}"
    )


def _value(data: bytes, response: httpx.Response, name: str, kind: str) -> Any:
    ctype = response.headers.get("content-type", "")
    if kind == "text":
        return _text(data, response)
    try:
        return json.loads(data) if data else None
    except ValueError:
        if kind == "any":
            return _text(data, response)
        raise StepFailure(
            f"output {name!r} ({kind}): the response body is not JSON "
            f"(Content-Type: {ctype[:80] or 'none'}): declare the output as text, or call an endpoint "
            "that answers JSON"
        ) from None


def _text(data: bytes, response: httpx.Response) -> str:
    try:
        return data.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")
