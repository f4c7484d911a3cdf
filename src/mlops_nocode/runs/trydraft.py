"""A test run of a draft playbook (the web editor's "Test run"): the playbook as one step of a generated
pipeline, fed by a sample step that turns the user's sample values into its inputs.

Samples are data, never paths: values travel as JSON, files as a plain name and their bytes (base64),
bounded by TRY_SAMPLE_MAX_BYTES in all; the sample step (library/samples.py) writes them inside its own
output folder. The run is an ordinary run of inline documents: its logs, metrics and outputs are read
through the runs API.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from mlops_nocode.library.samples import sample_name_problem
from mlops_nocode.spec import ARTIFACT_TYPES, Playbook, Problem, SpecError, parse_document
from mlops_nocode.spec.models import API_VERSION

SAMPLES_PLAYBOOK = "editor-samples"
SAMPLES_ENTRYPOINT = "mlops_nocode.library.samples:samples"
STEP_ID = "step"


def _size(sample: dict[str, Any], port: str, is_file: bool) -> tuple[int, list[Problem]]:
    """The bytes a sample holds, and why it does not fit its port."""
    where = f"body.inputs.{port}"
    if not is_file:
        if "value" not in sample:
            return 0, [Problem(f"input {port!r} takes a value", where, 'give it as {"value": ...}')]
        text = json.dumps(sample["value"])
        if "${{" in text:  # a sample is data: never an expression (no secret reaches the sample step)
            fix = "give the value itself (expressions such as ${{ secrets.X }} belong in the parameters)"
            return len(text), [Problem("a sample value holds '${{'", f"{where}.value", fix)]
        return len(text.encode()), []
    problems = []
    name = sample.get("filename")
    if not isinstance(name, str) or (why := sample_name_problem(name)):
        why = "a sample file needs a name" if not isinstance(name, str) else why
        problems.append(Problem(why, f"{where}.filename", "give a plain file name such as data.csv"))
    if isinstance(sample.get("text"), str):
        return len(sample["text"].encode("utf-8", "surrogatepass")), problems
    try:
        return len(base64.b64decode(str(sample.get("base64", "")), validate=True)), problems
    except (binascii.Error, ValueError):
        problems.append(Problem("not base64", f"{where}.base64", "send the file's bytes as base64"))
        return 0, problems


def try_documents(
    playbook: dict[str, Any], inputs: dict[str, dict[str, Any]], parameters: dict[str, Any], max_bytes: int
) -> list[dict[str, Any]]:
    """The documents of a test run of `playbook` (a spec mapping) on sample `inputs` with `parameters`.

    Raises SpecError with located problems (`body.playbook...`, `body.inputs.<port>...`)."""
    doc = parse_document(playbook, "body.playbook")
    if not isinstance(doc, Playbook):
        raise SpecError(Problem(f"a {doc.kind} is not a playbook", "body.playbook.kind", "send a Playbook"))
    name, ports = doc.metadata.name, doc.spec.inputs
    if name == SAMPLES_PLAYBOOK:
        raise SpecError(
            Problem(f"{name!r} is reserved", "body.playbook.metadata.name", "choose another name")
        )
    problems = [
        Problem(f"the playbook has no input {port!r}", f"body.inputs.{port}", f"inputs: {sorted(ports)}")
        for port in inputs
        if port not in ports
    ]
    problems += [
        Problem(f"input {port!r} needs a sample", f"body.inputs.{port}", "paste or upload a sample value")
        for port, p in ports.items()
        if port not in inputs and not p.optional
    ]
    total, samples = 0, {}
    for port, sample in inputs.items():
        if port not in ports:
            continue
        is_file = ports[port].type in ARTIFACT_TYPES
        size, why = _size(sample, port, is_file)
        total += size
        problems += why
        if not is_file:
            samples[port] = {"value": sample["value"]} if "value" in sample else {}
            continue
        data = sample.get("text")
        b64 = base64.b64encode(data.encode()).decode() if isinstance(data, str) else sample.get("base64", "")
        directory = ports[port].type == "directory"
        samples[port] = {"filename": sample.get("filename"), "base64": b64, "directory": directory}
    if total > max_bytes:
        problems.append(
            Problem(
                f"the samples hold {total} bytes, more than TRY_SAMPLE_MAX_BYTES ({max_bytes})",
                "body.inputs",
                "test on a smaller sample",
            )
        )
    if problems:
        raise SpecError(problems)
    draft = copy.deepcopy(playbook)
    draft.setdefault("spec", {})["cache"] = False  # a test run always runs the code, with its logs
    ref = f"playbook/{name}@{doc.metadata.version}"
    steps: list[dict[str, Any]] = []
    docs = [draft]
    if samples:
        docs.insert(0, _samples_playbook({p: ports[p].type for p in samples}))
        steps.append({"id": "samples", "uses": f"playbook/{SAMPLES_PLAYBOOK}", "with": {"samples": samples}})
    steps.append(
        {
            "id": STEP_ID,
            "uses": ref,
            "with": parameters,
            "inputs": {p: f"samples.{p}" for p in samples},
        }
    )
    pipeline_name = f"try-{name}" if len(name) <= 59 else "try-playbook"
    pipeline = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": {"name": pipeline_name, "description": f"test run of {ref}"},
        "spec": {"steps": steps, "outputs": {o: f"{STEP_ID}.{o}" for o in doc.spec.outputs}},
    }
    return [*docs, pipeline]


def _samples_playbook(types: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Playbook",
        "metadata": {"name": SAMPLES_PLAYBOOK, "version": "1.0.0", "description": "sample inputs"},
        "spec": {
            "runtime": "python",
            "python": {"entrypoint": SAMPLES_ENTRYPOINT},
            "outputs": {p: {"type": t} for p, t in types.items()},
            "parameters": {"type": "object", "properties": {"samples": {"type": "object"}}},
            "cache": False,
        },
    }
