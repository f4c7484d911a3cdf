"""Windmill's own validators, installed from npm on first use by scripts/windmill-tools.sh (outside the
clone): its OpenFlow schema (windmill-yaml-validator) and `wmill lint` (windmill-cli)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _strip_discriminators(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_discriminators(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_strip_discriminators(v) for v in node]
    return node


@pytest.fixture(scope="session")
def windmill_tools() -> Path:
    """The folder whose node_modules holds Windmill's npm packages (fails, never skips, without npm)."""
    if shutil.which("npm") is None:
        pytest.fail(
            "the Windmill checks need npm (Node >= 20) to install windmill-yaml-validator/windmill-cli"
        )
    proc = subprocess.run(
        [str(ROOT / "scripts" / "windmill-tools.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/windmill-tools.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def check_openflow(windmill_tools: Path) -> Callable[[dict[str, Any]], None]:
    """Validate a flow against Windmill's OpenFlow schema (OpenAPI 3.0 components, discriminators off)."""
    from openapi_schema_validator import OAS30Validator

    spec = json.loads(
        (windmill_tools / "node_modules/windmill-yaml-validator/dist/gen/openflow.json").read_text("utf-8")
    )
    schema = {
        "$ref": "#/components/schemas/OpenFlow",
        "components": _strip_discriminators(spec["components"]),
    }
    validator = OAS30Validator(schema)

    def check(flow: dict[str, Any]) -> None:
        errors = sorted(validator.iter_errors(flow), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:10])

    return check


@pytest.fixture(scope="session")
def wmill(windmill_tools: Path) -> Path:
    return windmill_tools / "node_modules" / ".bin" / "wmill"
