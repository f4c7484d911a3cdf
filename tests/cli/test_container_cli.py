"""`mlops run` of a pipeline whose built-in container step runs for real (podman), its image pinned."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult
from tests.runtime.podman_catalogue import PIPELINE, ROOT, WRITE_TEXT, catalogue_image

Mlops = Callable[..., CliResult]


def test_mlops_run_runs_the_built_in_container_playbook(
    mlops: Mlops, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    env = catalogue_image(tmp_path)
    f = write_spec(json.dumps([WRITE_TEXT, PIPELINE]), "p.json")
    r = mlops("run", str(f), "-c", str(ROOT / "catalogue"), "--json", env=env)
    assert r.code == 0, r.stdout + r.stderr
    out = r.json()
    assert out["outputs"]["counts"] == {"lines": 3, "words": 8, "bytes": 37}
    assert Path(out["outputs"]["matches"]).read_text() == "-e error again\n"
    plan = (Path(out["run_dir"]) / "plan.json").read_text()
    assert "localhost/mlops-busybox:1@sha256:" in plan
