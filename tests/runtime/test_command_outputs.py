"""`command.outputs` stay inside the step's output folder: refused at validate time with a located problem,
and confined at run time for plans that did not come through validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.compiler import Plan
from mlops_nocode.runtime.runner import Runner
from tests.conftest import CliResult


def playbook(outputs: str, argv: str = '[python3, -c, "pass"]') -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: esc, version: 1.0.0}}
spec:
  runtime: command
  command:
    argv: {argv}
    outputs: {outputs}
  outputs: {{y: {{type: file}}, z: {{type: json}}}}
"""


@pytest.mark.parametrize("path", ["../../../../etc/hostname", "/etc/hostname", "a/../../b", "..", ""])
def test_validate_refuses_paths_leaving_the_output_folder(
    mlops: Callable[..., CliResult], write_spec: Callable[[str], Path], path: str
) -> None:
    spec = write_spec(playbook(f"{{y: {json.dumps(path)}, z: z.json}}"))
    r = mlops("validate", str(spec), "--json")
    assert r.code == 2, r
    problems = r.json()["problems"]
    assert [p["where"].rsplit(" > ", 1)[-1] for p in problems] == ["spec.command.outputs.y"], problems
    assert "not inside the step's output folder" in problems[0]["what"]


def test_validate_refuses_undeclared_command_outputs(
    mlops: Callable[..., CliResult], write_spec: Callable[[str], Path]
) -> None:
    r = mlops("validate", str(write_spec(playbook("{y: y.bin, z: z.json, typo: t.json}"))), "--json")
    assert r.code == 2, r
    assert "command.outputs names ['typo'], not declared under outputs" in r.json()["problems"][0]["what"]


def test_validate_accepts_paths_inside(
    mlops: Callable[..., CliResult], write_spec: Callable[[str], Path]
) -> None:
    r = mlops("validate", str(write_spec(playbook("{y: sub/dir/y.bin, z: ./z.json}"))), "--json")
    assert r.code == 0, r


def plan_with(outputs: dict[str, str], argv: list[str]) -> Plan:
    """A plan written by hand (never validated) with one command step."""
    step: dict[str, Any] = {
        "id": "esc",
        "playbook": "playbook/esc@1.0.0",
        "digest": "x",
        "runtime": "command",
        "command": {"argv": argv, "outputs": outputs},
        "params": {},
        "inputs": {},
        "outputs": {"y": "file"},
        "needs": [],
    }
    return Plan.from_json({"format": "mlops-nocode/plan/v1", "root": "pipeline/p@1.0.0", "steps": [step]})


def test_a_writing_step_cannot_create_files_outside(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    rel = "../" * 12 + str(target).lstrip("/")
    script = "import sys; open(sys.argv[1], 'w').write('escaped')"
    r = Runner(plan_with({"y": rel}, ["python3", "-c", script, "${{ outputs.y }}"]), use_cache=False).run()
    assert r.status == "failed"
    assert "command.outputs.y:" in (r.steps["esc"].error or "") and "not a path inside" in (
        r.steps["esc"].error or ""
    )
    assert not target.exists()


@pytest.mark.parametrize("rel", ["../../../../../../../../../../etc/hostname", "/etc/hostname"])
def test_a_reading_step_cannot_collect_files_outside(home: Path, rel: str) -> None:
    r = Runner(plan_with({"y": rel}, ["true"]), use_cache=False).run()
    assert r.status == "failed"
    assert "not a path inside the step's output folder" in (r.steps["esc"].error or ""), r.steps["esc"].error
    assert not [p for p in (home / "artifacts").rglob("*") if p.is_file()]
