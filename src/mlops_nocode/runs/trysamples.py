"""Samples taken from an earlier run's outputs, for a playbook test run: `{"run": ID, "output": NAME}`
becomes the value or the file's bytes that output holds (read by the gateway from its own artifact
store, never a path from the caller), under the same size bound and secret rule as a download."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any, Protocol

from mlops_nocode.runs.artifacts import ArtifactMissing, holds_secret, locate
from mlops_nocode.runs.errors import RunNotFound
from mlops_nocode.runtime.redaction import Redactor
from mlops_nocode.spec import ARTIFACT_TYPES, Problem, SpecError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Runs(Protocol):
    def get(self, run_id: str) -> dict[str, Any]: ...
    def artifacts(self, run_id: str) -> dict[str, dict[str, Any]]: ...
    def redactor(self, run_id: str) -> Redactor: ...


def sample_file_name(name: str) -> str:
    """A stored file's name made a plain sample file name (letters, digits, `._-`, at most 100)."""
    plain = _UNSAFE.sub("_", name)[:100]
    return plain if plain and plain[0] not in ".-" else f"_{plain}"[:100]


def _resolve(runs: Runs, home: Path, sample: dict[str, Any], where: str, max_bytes: int) -> dict[str, Any]:
    run_id, name = str(sample.get("run", "")), str(sample.get("output", ""))
    try:
        run, records = runs.get(run_id), runs.artifacts(run_id)
    except RunNotFound:
        raise SpecError(
            Problem(f"no run {run_id[:80]!r}", f"{where}.run", "pick a run that exists")
        ) from None
    record = records.get(name)
    if record is None:
        known = ", ".join(sorted(records)) or "none (it has not ended, or made none)"
        raise SpecError(
            Problem(f"run {run_id} has no output {name[:80]!r}", f"{where}.output", f"outputs: {known}")
        )
    if record.get("type") not in ARTIFACT_TYPES:
        return {"value": (run.get("outputs") or {}).get(name)}
    try:
        path = locate(home, record)
    except ArtifactMissing as e:
        raise SpecError(Problem(str(e), f"{where}.output", "pick another run's output")) from None
    if path.is_dir():
        raise SpecError(Problem("a folder cannot be a sample", f"{where}.output", "pick a file output"))
    if record.get("withheld") or holds_secret(path, runs.redactor(run_id), record.get("digest")):
        raise SpecError(
            Problem(f"output {name!r} holds the value of a secret", f"{where}.output", "pick another output")
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise SpecError(
            Problem(
                f"output {name!r} is {size} bytes, more than TRY_SAMPLE_MAX_BYTES ({max_bytes})",
                f"{where}.output",
                "test on a smaller sample",
            )
        )
    data = path.read_bytes()[:max_bytes]
    return {"filename": sample_file_name(path.name), "base64": base64.b64encode(data).decode()}


def samples_from_runs(
    runs: Runs, home: Path, inputs: dict[str, dict[str, Any]], max_bytes: int
) -> dict[str, dict[str, Any]]:
    """`inputs` with every `{"run", "output"}` sample replaced by what that output holds; SpecError with
    every located problem."""
    out: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for port, sample in inputs.items():
        if "run" not in sample:
            out[port] = sample
            continue
        try:
            out[port] = _resolve(runs, home, sample, f"body.inputs.{port}", max_bytes)
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    return out
