"""Real runs of steps that flood their log: ~300 MB without a newline, and one 50 MB line holding a secret
where the line cap cuts it. `mlops run` succeeds, its `log` events carry capped lines with the marker and
no piece of the secret, and the Runner's peak memory stays that of a quiet run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

LINE_MAX_BYTES = 16 * 1024  # the default of STEP_LOG_LINE_MAX_BYTES
SECRET = "flood-tok-5b1e0c9d7a"
MARKER = re.compile(r" … \[(\d+) more bytes of this line cut; the step's log file has it whole\]$")
# A command step writing `mib` MiB: "endless" without a newline; "line" as one line, the run's secret
# written where the line cap cuts it, between two short lines.
CODE = f"""
import os, sys
mode, mib = sys.argv[1], int(sys.argv[2])
w, block = sys.stdout.buffer.write, b"x" * (1 << 20)
if mode == "line":
    w(b"before\\n" + b"a" * ({LINE_MAX_BYTES} - 10) + os.environ["TOK"].encode())
for _ in range(mib):
    w(block)
if mode == "line":
    w(b"\\nafter\\n")
"""


def flood_docs(endless_mib: int, line_mib: int) -> list[dict[str, Any]]:
    """A command playbook that floods its log, and a pipeline running both kinds of flood at once."""
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "flood", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "secrets": ["TOK"],
            "command": {"argv": [sys.executable, "-c", CODE, "${{ params.mode }}", "${{ params.mib }}"]},
            "parameters": {
                "type": "object",
                "properties": {"mode": {"type": "string"}, "mib": {"type": "integer"}},
            },
        },
    }
    steps = [
        {"id": "endless", "uses": "playbook/flood", "with": {"mode": "endless", "mib": endless_mib}},
        {"id": "line", "uses": "playbook/flood", "with": {"mode": "line", "mib": line_mib}},
    ]
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "floods", "version": "1.0.0"},
        "spec": {"steps": steps},
    }
    return [playbook, pipeline]


def check_flood_logs(lines: dict[str, list[str]], endless_mib: int, line_mib: int) -> None:
    """The `log` lines of each step (by step id) are capped, say how much was cut, and hide the secret."""
    (endless,) = lines["endless"]
    match = MARKER.search(endless)
    assert match, endless[-200:]
    kept = endless[: match.start()]  # less the characters where a secret reaching past the cut could be
    assert set(kept) == {"x"} and LINE_MAX_BYTES - 200 < len(kept) <= LINE_MAX_BYTES
    assert int(match.group(1)) == endless_mib * (1 << 20) - len(kept)
    before, cut, after = lines["line"]
    assert (before, after) == ("before", "after")
    match = MARKER.search(cut)
    assert match, cut[-200:]
    kept = cut[: match.start()]
    assert set(kept) == {"a"}, "a piece of the secret shows before the cut"
    assert int(match.group(1)) == LINE_MAX_BYTES - 10 + len(SECRET) + line_mib * (1 << 20) - len(kept)
    for text in lines["endless"] + lines["line"]:
        assert len(text.encode()) < LINE_MAX_BYTES + 200
        assert SECRET[:6] not in text


# Runs `mlops ARGS` in this process's child and writes its peak resident memory (KiB) to OUT.
DRIVER = """
import resource, runpy, sys
out = sys.argv[1]
sys.argv = ["mlops", *sys.argv[2:]]
try:
    runpy.run_module("mlops_nocode.cli.main", run_name="__main__")
finally:
    with open(out, "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def _run(tmp_path: Path, name: str, endless_mib: int, line_mib: int) -> tuple[dict[str, list[str]], int]:
    spec, events, peak = tmp_path / f"{name}.yaml", tmp_path / f"{name}.events", tmp_path / f"{name}.peak"
    spec.write_text("".join(f"---\n{json.dumps(d)}\n" for d in flood_docs(endless_mib, line_mib)))
    args = ["run", str(spec), "--json", "--no-cache", "--events", str(events)]
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(peak), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TOK": SECRET},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "succeeded"
    lines: dict[str, list[str]] = {"endless": [], "line": []}
    with open(events, encoding="utf-8") as f:
        for raw in f:
            assert len(raw) < 256 * 1024, f"an event of {len(raw)} bytes"
            event = json.loads(raw)
            if event["type"] == "log":
                lines[event["step"]].append(event["data"]["line"])
    return lines, int(peak.read_text()) * 1024


def test_steps_flooding_their_log_succeed_with_capped_lines_in_bounded_memory(tmp_path: Path) -> None:
    quiet_lines, quiet = _run(tmp_path, "quiet", 1, 1)
    check_flood_logs(quiet_lines, 1, 1)
    lines, peak = _run(tmp_path, "flood", 300, 50)
    check_flood_logs(lines, 300, 50)
    # the Runner read 350 MB of log: it held no more than a quiet run of the same steps (a few MiB)
    assert peak - quiet < 48 << 20, f"peak {peak >> 20} MiB, a quiet run {quiet >> 20} MiB"
