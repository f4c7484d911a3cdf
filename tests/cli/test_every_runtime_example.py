"""The shipped example that chains every runtime (catalogue/pipelines/provisioned-training.yaml):
Terraform creates a workspace, Ansible configures its hosts, Python trains, HTTP posts the metrics to a
webhook (a real server on loopback) — through `mlops run` here, and through the gateway in
tests/api/test_gateway_every_runtime.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.runtime.http_server import Answer, Server, serve

Mlops = Callable[..., CliResult]


@pytest.fixture
def hooks() -> Iterator[Server]:
    yield from serve()


def check_chain(run_dir: Path, outputs: dict[str, object], hooks: Server) -> None:
    """What each runtime of the example left: the Terraform workspace (destroyed at the end: it is
    ephemeral), one configuration file per host it described, a trained model, the metrics posted."""
    workspace = outputs["workspace"]
    assert isinstance(workspace, dict) and workspace["name"] == 'lab "one" ${x}' and workspace["size"] == 3
    state = json.loads((run_dir / "terraform" / "workspace" / "terraform.tfstate").read_text())
    assert state.get("resources", []) == [], "the ephemeral workspace is destroyed when the run ends"
    config = Path(str(outputs["configuration"]))
    assert [p.name for p in config.iterdir()] == ["localhost.json"]
    assert json.loads((config / "localhost.json").read_text())["settings"]["estimator"] == "knn"
    assert outputs["notified"] == 204
    [sent] = [s for s in hooks.seen if s.path == "/hook"]
    body = json.loads(sent.body)
    assert body["metrics"] == outputs["metrics"] and body["metrics"]["accuracy"] > 0.8
    assert body["text"] == 'provisioned-training: a model was trained in workspace lab "one" ${x}'


def test_the_example_chains_every_runtime_with_mlops_run(mlops: Mlops, hooks: Server) -> None:
    hooks.on("/hook", Answer(204, b"", {}))
    r = mlops(
        "run",
        "pipeline/provisioned-training",
        "--set",
        f"notify_url={hooks.url}/hook",
        "--set",
        'workspace=lab "one" ${x}',
        "--set",
        "workers=3",
        "--set",
        "estimator=knn",
        "--json",
    )
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded", summary
    runtimes = {"workspace", "configure", "train/train", "notify"}
    assert runtimes <= set(summary["steps"])
    check_chain(Path(summary["run_dir"]), summary["outputs"], hooks)
