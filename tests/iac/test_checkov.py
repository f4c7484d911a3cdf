"""The checkov gate: a high-severity finding (or one without severity, as checkov reports offline) must
be explained in the README beside it; scripts/checkov.sh runs the real checkov in its own venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.iac import checkov_gate as gate

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "checkov"


def _finding(path: Path, check: str = "CKV_K8S_21", severity: str | None = None) -> dict[str, object]:
    # the shape of a failed check in `checkov -o json` (3.3.30), as printed by the real run below
    return {"check_id": check, "check_name": "The default namespace should not be used",
            "severity": severity, "file_abs_path": str(path), "file_path": "/m/main.tf",
            "resource": "kubernetes_job.run"}  # fmt: skip


def _module(tmp_path: Path, name: str, readme: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text("")
    (folder / "README.md").write_text(readme)
    return folder / "main.tf"


def test_explained_findings_pass_and_unexplained_ones_fail(tmp_path: Path) -> None:
    ok = _module(
        tmp_path, "ok", "# ok\n\n## Checkov\n\n- CKV_K8S_21: one namespace per run, made by the caller\n"
    )
    no_reason = _module(tmp_path, "bare", "# bare\n\n## Checkov\n\n- CKV_K8S_21:\n")
    other_section = _module(tmp_path, "other", "## Checkov\n\n## Notes\n- CKV_K8S_21: not in the section\n")
    report = {"check_type": "terraform", "results": {
        "failed_checks": [_finding(ok), _finding(no_reason), _finding(other_section),
                          _finding(ok, "CKV_K8S_8", "LOW"), _finding(ok, "CKV_K8S_9", "HIGH")],
        "skipped_checks": [_finding(ok, "CKV_K8S_10", "CRITICAL")]}}  # fmt: skip
    problems = gate.unexplained([report], tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "bare/main.tf",
        "ok/main.tf",
        "ok/main.tf",
        "other/main.tf",
    ]
    assert "CKV_K8S_10" in problems[1] and "CKV_K8S_9" in problems[2]  # skipped inline still needs a reason
    assert "severity unknown (counted as high)" in problems[0]
    assert not any("CKV_K8S_8" in p for p in problems)  # low severity does not block


def test_a_kubernetes_finding_with_checkovs_doubled_path_finds_its_readme(tmp_path: Path) -> None:
    """checkov 3.3's kubernetes framework reports file_abs_path as SCANNED/SCANNED/...: the README beside
    the real file still explains the finding (it was looked for above the scanned folder)."""
    scanned = tmp_path / "deploy"
    manifest = _module(scanned, "k8s", "## Checkov\n- CKV_K8S_21: applied into the caller's namespace\n")
    finding = _finding(manifest) | {
        "file_abs_path": str(scanned / "deploy" / "k8s" / "main.tf"),
        "file_path": "/deploy/k8s/main.tf",
    }
    assert gate.unexplained([{"results": {"failed_checks": [finding]}}], scanned) == []


def test_an_empty_scan_passes(tmp_path: Path) -> None:
    assert gate.unexplained({"passed": 0, "failed": 0}, tmp_path) == []
    assert gate.unexplained([], tmp_path) == []


@pytest.mark.timeout(900)  # the first run installs checkov into its cached virtual environment
def test_real_checkov_scan_fails_on_the_unexplained_module_only() -> None:
    env = {**os.environ, "PROJECT_PYTHON": sys.executable}  # the gate runs with this test's Python
    done = subprocess.run(["bash", str(ROOT / "scripts" / "checkov.sh"), str(FIXTURES)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "checkov: 2 findings, 1 unexplained", done.stdout + done.stderr
    assert lines[0].startswith("unexplained/main.tf: kubernetes_job.unexplained: CKV_K8S_21")
