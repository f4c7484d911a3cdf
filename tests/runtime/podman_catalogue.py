"""The built-in container playbook's image (scripts/busybox-image.sh) and a pipeline that uses it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.runtime.podman import engine_env

OUT = "${{ outputs.text }}"
ROOT = Path(__file__).resolve().parents[2]
WRITE_TEXT: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Playbook",
    "metadata": {"name": "write-text", "version": "1.0.0"},
    "spec": {
        "runtime": "command",
        "command": {
            "argv": ["sh", "-c", "printf 'ok line\\nan error here\\n-e error again\\n' > \"$1\"", "sh", OUT],
            "outputs": {"text": "t.txt"},
        },
        "outputs": {"text": {"type": "file"}},
    },
}
PIPELINE: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Pipeline",
    "metadata": {"name": "count-words", "version": "1.0.0"},
    "spec": {
        "steps": [
            {"id": "write", "uses": "playbook/write-text"},
            {
                "id": "count",
                "uses": "playbook/container-word-count",
                "inputs": {"text": "write.text"},
                "with": {"pattern": "-e error"},
            },
        ],
        "outputs": {"counts": "count.counts", "matches": "count.matches"},
    },
}


def catalogue_image(folder: Path) -> dict[str, str]:
    """Build the image with the shipped script; the environment entries the engine needs."""
    env = engine_env(folder)
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "busybox-image.sh")],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    return env
