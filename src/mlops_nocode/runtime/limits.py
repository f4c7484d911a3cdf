"""Limits on what the Runner collects from a step's output folder (and its log), read from the environment.

Every Runner reads them (`mlops run`, `mlops execute` and the gateway's workers alike), from environment
variables of the same name in upper case. Sizes accept plain bytes or units (`512MiB`, `4GiB`, `10GB`).
"""

from __future__ import annotations

from pydantic import ByteSize, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LimitsConfigError", "OutputLimits", "load_limits"]

GiB = 1 << 30
MiB = 1 << 20
KiB = 1 << 10


class LimitsConfigError(ValueError):
    """An output limit in the environment has a bad value; the message names the variable."""


class OutputLimits(BaseSettings):
    """How much a step may leave behind as outputs, and how deep and wide its output folders may be."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    step_output_max_bytes: ByteSize = Field(
        ByteSize(4 * GiB), gt=0, description="bytes of one output (a file, or all files of a folder)"
    )
    step_outputs_max_bytes: ByteSize = Field(
        ByteSize(8 * GiB), gt=0, description="bytes of all the outputs of one step attempt"
    )
    run_outputs_max_bytes: ByteSize = Field(
        ByteSize(32 * GiB), gt=0, description="bytes of all the outputs stored by one run"
    )
    step_values_max_bytes: ByteSize = Field(
        ByteSize(16 * MiB),
        gt=0,
        description="bytes of a step's JSON values together (json, text, metrics outputs; a Python step's "
        "whole result) and of its metrics file",
    )
    step_output_max_files: int = Field(
        100_000, gt=0, description="files and folders in all the output folders of one step attempt"
    )
    step_output_max_depth: int = Field(32, gt=0, le=200, description="nesting depth of an output folder")
    step_log_line_max_bytes: ByteSize = Field(
        ByteSize(16 * KiB),
        ge=KiB,
        le=256 * KiB,
        description="bytes of one line of a step's log in a `log` event: a longer line is cut, with a marker",
    )


def load_limits() -> OutputLimits:
    """Read `OutputLimits` from the environment; raise `LimitsConfigError` naming any bad variable."""
    try:
        return OutputLimits()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise LimitsConfigError("invalid output limits: " + "; ".join(problems)) from None
