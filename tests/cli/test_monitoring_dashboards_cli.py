"""`mlops monitoring dashboards --out DIR` as a real process: the generated files, the summary, and
located errors (no traceback, nothing written) for a folder that cannot be written or a missing SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlops_nocode.monitoring.files import shipped_monitoring

SHIPPED = shipped_monitoring() / "grafana" / "dashboards"
FILES = ["mlops-costs.json", "mlops-models.json", "mlops-overview.json", "mlops-runs.json"]


def mlops(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nfrom mlops_nocode.cli.main import main\nsys.argv = ['mlops', *sys.argv[1:]]\nmain()"
    return subprocess.run(
        [sys.executable, "-c", "import sys\n" + code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "120"},  # MLOPS_HOME: the test's own (tests/conftest.py)
    )


def test_writes_every_dashboard_with_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "new" / "grafana"
    done = mlops("monitoring", "dashboards", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == FILES, "one JSON per dashboard, no temp file left"
    for name in FILES:
        assert (out / name).read_text("utf-8") == (SHIPPED / name).read_text("utf-8")
        assert name.removesuffix(".json") in done.stdout
    assert "4 Grafana dashboards written" in done.stdout


def test_json_output_lists_the_files(tmp_path: Path) -> None:
    done = mlops("monitoring", "dashboards", "--out", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "written"
    assert sorted(Path(d["file"]).name for d in data["dashboards"]) == FILES
    assert {d["uid"]: d["panels"] for d in data["dashboards"]}["mlops-models"] == 1


def test_a_folder_name_is_only_a_name(tmp_path: Path) -> None:
    hostile = tmp_path / "$(touch pwned)`id`;x"
    done = mlops("monitoring", "dashboards", "--out", str(hostile))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in hostile.iterdir()) == FILES
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_an_unwritable_out_is_a_located_problem(tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder", encoding="utf-8")
    for out in (a_file, a_file / "below"):
        done = mlops("monitoring", "dashboards", "--out", str(out))
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "--out" in done.stderr and "cannot write the dashboards" in done.stderr
        assert "fix:" in done.stderr
    assert a_file.read_text("utf-8") == "not a folder"


def test_without_the_sdk_it_names_the_extra(tmp_path: Path) -> None:
    block = "sys.modules['grafana_foundation_sdk'] = None  # as if the package were not installed"
    done = mlops("monitoring", "dashboards", "--out", str(tmp_path / "x"), prelude=block)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "mlops-nocode[monitoring]" in done.stderr
    assert not (tmp_path / "x").exists(), "nothing written"


def test_missing_out_is_a_usage_error() -> None:
    done = mlops("monitoring", "dashboards")
    assert done.returncode == 2 and "--out" in done.stderr and "Traceback" not in done.stderr
