"""The runner image's entrypoint (deploy/docker/runner-entrypoint.sh), run for real under `sh` with a
stub `mlops` on PATH: a plan given in MLOPS_PLAN_B64 (RunPod, Vast.ai) starts the deployment's Runner
even where the provider sends no start command; hostile values stay data; the plan variable does not
reach the Runner; MLOPS_HOLD=1 waits instead of exiting; arguments pass straight to `mlops execute`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "runner-entrypoint.sh"
HOSTILE = "dep-$(touch PWNED)`touch PWNED`;touch PWNED'\"\n${IFS}"


def _stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "record.json"
    (bin_dir / "mlops").write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "plan = open(sys.argv[2]).read() if len(sys.argv) > 2 and os.path.isfile(sys.argv[2]) else None\n"
        f"json.dump({{'argv': sys.argv[1:], 'plan': plan, 'b64': 'MLOPS_PLAN_B64' in os.environ}}, "
        f"open({str(record)!r}, 'w'))\n"
        "sys.exit(int(os.environ.get('STUB_EXIT', '0')))\n"
    )
    (bin_dir / "sleep").write_text(f"#!/bin/sh\necho held > {tmp_path / 'held'}\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{_stubs(tmp_path)}:{os.environ['PATH']}"
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env={"PATH": path, "TMPDIR": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_plan_in_the_environment_runs_its_deployment_and_hostile_values_stay_data(tmp_path: Path) -> None:
    plan = json.dumps({"format": "mlops-nocode/plan/v1", "root": HOSTILE})
    done = _run(
        tmp_path,
        MLOPS_PLAN_B64=base64.b64encode(plan.encode()).decode(),
        MLOPS_DEPLOYMENT=HOSTILE,
        MLOPS_REPORT_TO="http://gw:8000/$(touch PWNED)",
        STUB_EXIT="3",
    )
    assert done.returncode == 3, done.stderr  # the Runner's status is the container's
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["argv"] == [
        "execute",
        str(tmp_path / "mlops-plan.json"),
        "--deployment",
        HOSTILE,
        "--report-to",
        "http://gw:8000/$(touch PWNED)",
    ]
    assert record["plan"] == plan and record["b64"] is False
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "held").exists()


def test_hold_waits_after_the_runner_ends(tmp_path: Path) -> None:
    b64 = base64.b64encode(b"{}").decode()
    done = _run(
        tmp_path, MLOPS_PLAN_B64=b64, MLOPS_DEPLOYMENT="d", MLOPS_REPORT_TO="http://gw", MLOPS_HOLD="1"
    )
    assert done.returncode == 0 and (tmp_path / "held").exists(), done.stderr


def test_arguments_go_to_mlops_execute_and_a_missing_deployment_is_named(tmp_path: Path) -> None:
    done = _run(tmp_path, "/plan/plan.json", "--deployment", "x")
    assert done.returncode == 0
    assert json.loads((tmp_path / "record.json").read_text())["argv"] == [
        "execute",
        "/plan/plan.json",
        "--deployment",
        "x",
    ]
    again = tmp_path / "again"
    again.mkdir()
    missing = _run(again, MLOPS_PLAN_B64="e30=")
    assert missing.returncode != 0 and "MLOPS_DEPLOYMENT is not set" in missing.stderr
