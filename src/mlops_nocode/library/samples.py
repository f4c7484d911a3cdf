"""The sample step of a playbook's test run (POST /api/v1/playbooks/try): it hands the sample values a
user gave in the editor to the draft playbook's inputs.

Each sample is {"value": JSON} for value ports, or {"filename", "base64"} for file-like ports (file,
dataset, model: the file; directory: a folder holding it). File names were checked by the gateway and
are checked again here: a plain name, written inside this step's own output folder.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

from mlops_nocode.runtime.context import StepContext

SAMPLE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
"""A sample file's name: a plain name (letters, digits, `._-`), never a path, never `.` or `..`."""


def sample_name_problem(name: str) -> str:
    """Why `name` cannot be a sample file's name ("" when it can)."""
    if not SAMPLE_NAME_RE.fullmatch(name) or set(name) == {"."}:
        return (
            f"sample file name {name[:60]!r} is not a plain file name: use letters, digits, '.', '_' and "
            "'-' (at most 100), without any folder"
        )
    return ""


def samples(*, samples: dict[str, dict[str, Any]], ctx: StepContext) -> dict[str, Any]:
    """Every sample as an output named like the input port it feeds."""
    out: dict[str, Any] = {}
    for port, sample in samples.items():
        if "value" in sample:
            out[port] = sample["value"]
            ctx.log.info("sample %s: a value", port)
            continue
        name = str(sample.get("filename", ""))
        if problem := sample_name_problem(name):
            raise ValueError(problem)
        try:
            data = base64.b64decode(str(sample.get("base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"sample {port}: its content is not base64") from None
        folder: Path = ctx.output_dir / f"sample-{len(out)}"
        folder.mkdir()
        (folder / name).write_bytes(data)
        out[port] = str(folder) if sample.get("directory") else str(folder / name)
        ctx.log.info("sample %s: %s (%d bytes)", port, name, len(data))
    return out
