"""`mlops run` with the S3 artifact store (a real moto server on loopback): a pipeline end to end, cache
hits on a second MLOPS_HOME sharing only the bucket (the "second machine"), a Runner that waits for a step
run elsewhere, and runs that fail cleanly on bad credentials or an unreachable store."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_nocode.compiler import Plan
from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.runtime.s3store import open_store
from mlops_nocode.runtime.shared import SharedArtifacts
from mlops_nocode.runtime.store import ArtifactStore
from tests.conftest import CliResult
from tests.s3_support import BUCKET, MotoS3, s3server

__all__ = ["s3server"]
Mlops = Callable[..., CliResult]

DOCS = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: make, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [PY, -c, MAKE, "${{ outputs.data }}", "${{ outputs.tree }}"]
    outputs: {data: data.txt, tree: tree}
  outputs: {data: {type: file}, tree: {type: directory}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: count, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [PY, -c, COUNT, "${{ inputs.data }}", "${{ inputs.tree }}", "${{ outputs.n }}"]
    outputs: {n: n.json}
  inputs: {data: {type: file}, tree: {type: directory}}
  outputs: {n: {type: json}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: shared, version: 1.0.0}
spec:
  steps:
    - {id: make, uses: playbook/make}
    - {id: count, uses: playbook/count, inputs: {data: make.data, tree: make.tree}}
  outputs: {n: count.n, data: make.data}
"""
MAKE = (
    "import sys, os; open(sys.argv[1], 'w').write('x' * 5000); os.makedirs(sys.argv[2] + '/d'); "
    "open(sys.argv[2] + '/d/f', 'w').write('F')"
)
COUNT = (
    "import sys, os; "
    "open(sys.argv[3], 'w').write(str(len(open(sys.argv[1]).read()) + len(os.listdir(sys.argv[2]))))"
)
DOCS = DOCS.replace("PY", sys.executable).replace("MAKE", json.dumps(MAKE))
DOCS = DOCS.replace("COUNT", json.dumps(COUNT))


def _spec(tmp_path: Path) -> Path:
    f = tmp_path / "shared.yaml"
    f.write_text(DOCS.replace("name: shared", f"name: shared-{uuid.uuid4().hex[:6]}"))
    return f


def _secrets_absent(server: MotoS3, *texts: str) -> None:
    for text in texts:
        assert server.secret_key not in text and server.access_key not in text


def test_a_run_shares_its_artifacts_and_a_second_machine_hits_the_cache(
    mlops: Mlops, s3server: MotoS3, tmp_path: Path
) -> None:
    env = s3server.env(f"e2e-{uuid.uuid4().hex[:8]}")
    spec = _spec(tmp_path)
    first = mlops("run", str(spec), "--json", env=env)
    assert first.code == 0, first
    assert first.json()["outputs"]["n"] == 5001
    keys = [o["Key"] for o in s3server.client().list_objects_v2(Bucket=BUCKET)["Contents"]]
    prefix = env["ARTIFACT_STORE_URL"].split("/", 3)[3]
    assert any(k.startswith(f"{prefix}/artifacts/") and k.endswith("/tree/d/f") for k in keys)
    assert sum(k.startswith(f"{prefix}/cache/") for k in keys) == 2

    other = tmp_path / "machine-2"  # a second MLOPS_HOME: it shares nothing but the bucket
    second = mlops("run", str(spec), "--json", env={**env, "MLOPS_HOME": str(other)})
    assert second.code == 0, second
    summary = second.json()
    assert [s["cached"] for s in summary["steps"].values()] == [True, True], summary
    assert summary["outputs"]["n"] == 5001
    data = Path(summary["outputs"]["data"])
    assert data.is_relative_to(other) and data.read_text() == "x" * 5000
    events = "".join(p.read_text() for p in other.rglob("events.jsonl"))
    _secrets_absent(s3server, first.stdout, first.stderr, second.stdout, second.stderr, events)


def test_bad_credentials_fail_the_run_with_a_located_error_and_no_secret(
    mlops: Mlops, s3server: MotoS3, tmp_path: Path
) -> None:
    wrong = "Wrong-" + uuid.uuid4().hex
    env = s3server.env("bad", ARTIFACT_STORE_SECRET_KEY=wrong)
    r = mlops("run", str(_spec(tmp_path)), "--json", env=env)
    assert r.code == 1, r
    summary = r.json()
    error = summary["steps"]["make"]["error"]
    assert "refused the credentials" in error and f"s3://{BUCKET}/bad" in error, error
    assert summary["steps"]["count"]["status"] == "skipped"
    assert wrong not in r.stdout + r.stderr
    _secrets_absent(s3server, r.stdout, r.stderr)


def test_an_unreachable_store_fails_the_run_without_hanging(mlops: Mlops, tmp_path: Path) -> None:
    env = {
        "ARTIFACT_STORE_URL": "s3://bucket/x",
        "ARTIFACT_STORE_ENDPOINT": "http://127.0.0.1:9",
        "ARTIFACT_STORE_ACCESS_KEY": "k",
        "ARTIFACT_STORE_SECRET_KEY": "s-" + uuid.uuid4().hex,
        "ARTIFACT_STORE_CONNECT_TIMEOUT": "2",
        "ARTIFACT_STORE_ATTEMPTS": "1",
    }
    r = mlops("run", str(_spec(tmp_path)), "--json", env=env, timeout=120)
    assert r.code == 1, r
    assert "does not answer at http://127.0.0.1:9" in r.json()["steps"]["make"]["error"]
    assert env["ARTIFACT_STORE_SECRET_KEY"] not in r.stdout + r.stderr


def test_bad_store_settings_are_refused_before_anything_runs(mlops: Mlops, tmp_path: Path) -> None:
    r = mlops("run", str(_spec(tmp_path)), env={"ARTIFACT_STORE_URL": "s3://Bad_Bucket"})
    assert r.code != 0 and "ARTIFACT_STORE_URL" in r.stderr and "Traceback" not in r.stderr, r


def test_a_runner_takes_the_result_of_a_step_run_on_another_machine(s3server: MotoS3, tmp_path: Path) -> None:
    """Two Runners on one plan: "there" runs only `make`, "here" runs `count` and waits for `make`."""
    mp = pytest.MonkeyPatch()
    for k, v in s3server.env(f"split-{uuid.uuid4().hex[:8]}").items():
        mp.setenv(k, v)
    try:
        spec = _spec(tmp_path)
        plan_file = tmp_path / "plan.json"
        compiled = subprocess.run(
            [sys.executable, "-m", "mlops_nocode.cli.main", "plan", str(spec), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        plan_file.write_text(compiled.stdout)
        plan = Plan.from_json(json.loads(compiled.stdout))
        here = Runner(plan, home=tmp_path / "here", run_id="split-run", elsewhere={"make"}, use_cache=False)
        done: dict[str, object] = {}
        thread = threading.Thread(target=lambda: done.setdefault("r", here.run()))
        thread.start()
        deadline = time.monotonic() + 60
        while not (tmp_path / "here" / "runs" / "split-run" / "events.jsonl").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        there = Runner(
            plan, home=tmp_path / "there", run_id="split-run", elsewhere={"count"}, elsewhere_timeout=0.1
        )
        assert there.states["make"].status == "pending"
        there_result = there.run()  # runs make; count, awaited briefly, is not its own
        assert there_result.steps["make"].status == "succeeded"
        thread.join(120)
        result = done["r"]
        assert result.status == "succeeded", result.summary()  # type: ignore[attr-defined]
        assert result.outputs["n"] == 5001  # type: ignore[attr-defined]
        store = open_store()
        assert store is not None
        shared = SharedArtifacts(store, ArtifactStore(tmp_path / "x"), OutputLimits())
        assert shared.wait_result("split-run", "count", time.monotonic() + 5)["status"] == "succeeded"
    finally:
        mp.undo()
