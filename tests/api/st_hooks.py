"""Schemathesis hooks and checks for the gateway's fuzz run (SCHEMATHESIS_HOOKS=tests.api.st_hooks).

- `no_secret_in_answer`: no answer (body or headers) holds a secret value of the vault, raw or in any
  form JSON gives it (escaped quotes, backslashes, control characters, \\uXXXX for non-ASCII), nor any
  line of a multi-line secret. The values come in MLOPS_ST_SECRETS (a JSON list); the operations listed
  in MLOPS_ST_RAW_FILES (a JSON list of labels) are not checked.
- `operations_answered`: records each operation that got an answer, to MLOPS_ST_SEEN (one label per line),
  so the test can check that the run covered every operation of the schema.
- `before_call`: the fuzzing never revokes its own key.
- `flatmap_path_parameters`: half the run ids and pipeline ids drawn are a real run's (MLOPS_ST_RUN_ID),
  one that used the secrets, so its answers (outputs, events, logs, artifacts) are read too.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

MIN_LINE = 6  # lines of a multi-line secret shorter than this ("-----", "") are not secrets by themselves


def forms(value: str) -> set[str]:
    """Every representation of a secret value that must never appear in an answer."""
    out = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    out |= {line for line in value.splitlines() if len(line.strip()) >= MIN_LINE}
    return {f for f in out if f}


def _secrets() -> set[str]:
    return {f for v in json.loads(os.environ.get("MLOPS_ST_SECRETS", "[]")) for f in forms(v)}


@schemathesis.check
def no_secret_in_answer(ctx: Any, response: Any, case: Any) -> None:
    """No secret value, raw or JSON-escaped, in any answer (but those of MLOPS_ST_RAW_FILES: operations
    answering a file a step wrote, byte for byte)."""
    raw_files = json.loads(os.environ.get("MLOPS_ST_RAW_FILES", "[]"))
    if case is not None and case.operation.label in raw_files:
        return
    text = response.content.decode("utf-8", errors="replace")
    headers = json.dumps(dict(response.headers))
    for form in _secrets():
        if form in text or form in headers:
            raise AssertionError(f"a secret value ({len(form)} characters) is in the answer")


@schemathesis.check
class operations_answered:  # a check is named after its class
    """Write the label of every operation that answered (the test compares them with the schema)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def after_response(self, ctx: Any, response: Any, case: Any) -> None:
        label = case.operation.label
        if label not in self.seen:
            self.seen.add(label)
            with open(os.environ["MLOPS_ST_SEEN"], "a", encoding="utf-8") as f:
                f.write(label + "\n")


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Never revoke the key the fuzzing itself runs with (MLOPS_ST_OWN_KEY_ID): the fuzzer reuses ids it
    read in answers (whoami, the key list) and would lock itself out once it made other admin keys. Runs
    before every call of every phase (generation hooks do not see the ids it reuses)."""
    own = os.environ.get("MLOPS_ST_OWN_KEY_ID")
    params = case.path_parameters or {}
    if own and params.get("key_id") == own:
        case.path_parameters = {**params, "key_id": "0" * len(own)}


@schemathesis.hook
def flatmap_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    known = os.environ.get("MLOPS_ST_RUN_ID")
    if not path_parameters or not known:
        return st.just(path_parameters)
    real = {k: known if k in ("run_id", "pipeline_id") else v for k, v in path_parameters.items()}
    return st.sampled_from([path_parameters, real])
