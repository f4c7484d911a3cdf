"""What a litellm step sends and keeps: its templates filled from `${{ params|inputs.X }}` (one pass: a
value substituted is never read again as an expression; a file input is read as UTF-8 text up to
LLM_STEP_INPUT_MAX_BYTES), the texts to embed, and the answer parsed and validated as JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_nocode.runtime.attempt import Attempt, StepFailure
from mlops_nocode.spec.expressions import EXPR_RE

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


class LlmStepSettings(BaseSettings):
    """Limits of litellm steps, read from the environment of the Runner (`LLM_STEP_*`)."""

    model_config = SettingsConfigDict(env_prefix="LLM_STEP_", case_sensitive=False, extra="ignore")

    input_max_bytes: int = Field(
        1_000_000, ge=1, le=100_000_000, description="bytes of one input put into a prompt (a file's size)"
    )
    embed_batch: int = Field(128, ge=1, le=4096, description="texts per embedding call")
    max_texts: int = Field(100_000, ge=1, le=10_000_000, description="texts one embedding step may embed")


class Values:
    """The parameters and inputs of an attempt, as prompt text."""

    def __init__(self, a: Attempt, settings: LlmStepSettings) -> None:
        self.a, self.settings = a, settings

    def value(self, ns: str, name: str) -> Any:
        """The value of `params.X` or `inputs.X` (a file input: its text)."""
        if ns == "params":
            return self.a.step.params.get(name)
        rec = self.a.inputs.get(name)
        if rec is None:
            return None
        if "value" in rec:
            return rec["value"]
        return self._file_text(name, Path(str(rec.get("path", ""))))

    def _file_text(self, name: str, path: Path) -> str:
        cap = self.settings.input_max_bytes
        if not path.is_file():
            raise StepFailure(f"input {name!r} is not a file (a folder cannot be put in a prompt)")
        with open(path, "rb") as f:
            data = f.read(cap + 1)
        if len(data) > cap:
            raise StepFailure(
                f"input {name!r} is larger than LLM_STEP_INPUT_MAX_BYTES ({cap} bytes): give a smaller "
                "text (split or summarise it first), or raise LLM_STEP_INPUT_MAX_BYTES"
            )
        return data.decode("utf-8", errors="replace")

    def text(self, template: str) -> str:
        """`template` with its expressions replaced by their values as text (JSON for non-strings)."""
        return EXPR_RE.sub(lambda m: as_text(self.value(m[1], m[2])), template)

    def whole(self, template: str) -> Any:
        """The value of a template that is one expression (typed), else its text."""
        m = EXPR_RE.fullmatch(template.strip())
        return self.value(m[1], m[2]) if m and m[3] is None else self.text(template)


def as_text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else json.dumps(v)


def route_name(values: Values, template: str, where: str) -> str:
    """A route name from `model:` or a fallback: as written, or a parameter's value."""
    from mlops_nocode.integrations.litellm.routes import ROUTE_NAME

    name = values.whole(template)
    if not isinstance(name, str) or not ROUTE_NAME.fullmatch(name) or ".." in name:
        raise StepFailure(
            f"litellm.{where}: {str(name)[:100]!r} is not a model route name: give the name of a route "
            "(`mlops llm routes list`, GET /api/v1/models)"
        )
    return name


def number(values: Values, raw: float | int | str | None, where: str, integer: bool) -> Any:
    """temperature / max_tokens: as written, or a parameter's value (checked)."""
    if raw is None:
        return None
    v = values.whole(raw) if isinstance(raw, str) else raw
    if v is None or v == "":
        return None
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    if ok and integer:
        ok = float(v).is_integer() and v >= 1
    elif ok:
        ok = 0 <= v <= 2
    if not ok:
        want = "an integer of at least 1" if integer else "a number from 0 to 2"
        raise StepFailure(f"litellm.{where}: {str(v)[:50]!r} is not {want}: fix the parameter's value")
    return int(v) if integer else float(v)


def embed_texts(values: Values, template: str) -> list[str]:
    """The texts to embed: a list of strings, one string, or a file (a JSON list, else one per line)."""
    m = EXPR_RE.fullmatch(template.strip())
    v: Any = values.text(template) if m is None else values.value(m[1], m[2])
    is_file = m is not None and m[1] == "inputs" and "value" not in values.a.inputs.get(m[2], {"value": 0})
    if is_file and isinstance(v, str):
        try:
            parsed = json.loads(v)
        except ValueError:
            parsed = None
        v = parsed if isinstance(parsed, list) else [line for line in v.splitlines() if line.strip()]
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
        raise StepFailure(
            "litellm.input: the texts to embed must be a list of strings or a text "
            f"(got {type(v).__name__}): fix the input or parameter"
        )
    if not v:
        raise StepFailure("litellm.input: there is no text to embed (the list is empty)")
    if any(not t.strip() for t in v):
        raise StepFailure("litellm.input: an empty text cannot be embedded: remove it")
    cap = values.settings.max_texts
    if len(v) > cap:
        raise StepFailure(f"litellm.input: {len(v)} texts, more than LLM_STEP_MAX_TEXTS ({cap}): raise it")
    return v


def schema_hint(schema: dict[str, Any] | None) -> str:
    """The system message asking for JSON when the route cannot constrain its answer natively."""
    if schema is None:
        return "Answer with one JSON object only: no prose, no code fence."
    return (
        "Answer with one JSON object only (no prose, no code fence) that conforms to this JSON Schema:\n"
        + json.dumps(schema, sort_keys=True)
    )


def parse_answer(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """(the JSON value, None) or (None, why it is not what was asked)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced[1].strip()
    try:
        value = json.loads(body)
    except ValueError as e:
        msg = getattr(e, "msg", str(e))
        pos = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        return None, f"not JSON ({msg}{pos})"
    if schema is None:
        return value, None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return value, None
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return None, f"JSON that does not match json_schema at {where}: {message}"


def numbers(value: Any) -> dict[str, float]:
    """The top-level numbers of a JSON object (a judge's score) as metrics."""
    if not isinstance(value, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    }
