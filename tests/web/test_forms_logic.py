"""The parameter forms' pure logic (frontend/src/forms/schema.ts and schemaEdit.ts), compiled with the
project's TypeScript and run in Node: pydantic's nullable forms normalised, where a located problem of the
gateway lands in a form (a field, an array item, or above the form when no field shows it), bindings,
secret fields, and the schema builder's type changes and typed defaults."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).parents[2] / "frontend"
TSC = FRONTEND / "node_modules" / "typescript" / "bin" / "tsc"

CHECKS = Path(__file__).with_name("forms_logic.cjs")


def test_forms_logic(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not TSC.is_file():
        pytest.fail("these checks need Node and the UI's dependencies: run make ui")
    sources = [FRONTEND / "src" / "forms" / f for f in ("schema.ts", "schemaEdit.ts")]
    options = ["--module", "commonjs", "--target", "es2022", "--strict", "--skipLibCheck"]
    where = ["--outDir", str(tmp_path), "--rootDir", str(FRONTEND / "src")]
    subprocess.run(
        [node, str(TSC), *where, *options, *map(str, sources)], check=True, capture_output=True, timeout=120
    )
    shutil.copy(CHECKS, tmp_path / "checks.cjs")
    done = subprocess.run([node, "checks.cjs"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
