"""`mlops targets` (state and offers of every provider), `mlops targets refresh`, and placed plans through
the CLI: `plan --target auto` explains its choice, `execute` accepts steps placed on remote providers,
`run` refuses to run them here. Test providers read fixture price sheets (made-up prices)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PLAYBOOKS, CliResult
from tests.fixtures.providers import install_sheets

Mlops = Callable[..., CliResult]
FLEET = {"TEST_PROVIDERS": "runpod,vastai"}
GPU_PIPE = """
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: gpu-add, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  outputs: {y: {type: json}}
  parameters: {type: object, properties: {n: {type: integer, default: 1}}}
  resources: {cpu: 2, memory: 8Gi, gpu: 1}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: gpu, version: 1.0.0}
spec:
  target: {provider: auto, options: {gpu_type: A100}}
  steps: [{id: fit, uses: playbook/gpu-add}, {id: a, uses: playbook/add, target: {provider: runpod}}]
  outputs: {y: a.y}
"""


def targets(mlops: Mlops, *args: str, env: dict[str, str] | None = None) -> CliResult:
    install_sheets()
    return mlops("targets", *args, module="providers", env={**FLEET, **(env or {})})


def test_targets_lists_every_provider_with_state_offers_and_no_secret(mlops: Mlops) -> None:
    r = targets(mlops, "--json", env={"VASTAI_API_KEY": "s3cret-value"})
    assert r.code == 0, r
    found = {t["provider"]: t for t in r.json()}
    assert list(found)[:5] == ["local", "k3s", "exoscale", "vastai", "runpod"]
    assert found["local"]["ready"] and found["local"]["offers"][0]["id"] == "this-machine"
    assert found["runpod"]["credentials"] is False and found["runpod"]["missing"] == ["RUNPOD_API_KEY"]
    assert found["vastai"]["credentials"] is True and found["vastai"]["ready"] is True
    assert [o["price_per_hour"] for o in found["runpod"]["offers"]] == [0.17, 1.19, 2.69]  # cheapest first
    assert found["runpod"]["sheet"]["date"] == "2026-11-02" and found["runpod"]["sheet"]["refreshed"]
    assert found["vastai"]["offers"][0]["gpu_memory_gib"] == 24 and found["vastai"]["offers"][0]["region"]
    if not found["k3s"]["installed"]:
        assert found["k3s"]["reason"] and found["k3s"]["offers"] == []
    assert "s3cret" not in r.stdout + r.stderr
    table = targets(mlops, "--provider", "runpod")
    assert table.code == 0, table
    for text in ("credentials missing (RUNPOD_API_KEY)", "NVIDIA A100 80GB PCIe", "1x A100-80GB", "1.19 USD"):
        assert text in table.stdout
    assert "prices of 2026-11-02" in table.stdout and "made-up prices" in table.stdout
    bad = targets(mlops, "--provider", "mars", "--json")
    assert bad.code == 2 and bad.json()["problems"][0]["where"] == "--provider"


def test_refresh_needs_credentials_and_then_stores_fresh_prices(mlops: Mlops, home: Path) -> None:
    r = targets(mlops, "refresh", "runpod")
    assert r.code == 2 and "RUNPOD_API_KEY" in r.stderr and "Traceback" not in r.stderr
    r = targets(mlops, "refresh", "runpod", "--json", env={"RUNPOD_API_KEY": "k"})
    assert r.code == 0 and r.json() == {"refreshed": {"runpod": 3}}, r
    assert json.loads((home / "prices" / "runpod.json").read_text())["source"] == "test API"
    r = mlops("targets", "--json", "--provider", "runpod", module="providers", env=FLEET)
    assert {o["price_per_hour"] for o in r.json()[0]["offers"]} == {0.5}
    assert targets(mlops, "refresh", "mars").code == 2


def test_auto_placement_through_plan_and_execute_of_remote_steps(
    mlops: Mlops, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    install_sheets()
    f = write_spec(PLAYBOOKS + GPU_PIPE)
    r = mlops("plan", str(f), "--json", module="providers", env=FLEET)
    assert r.code == 0, r
    placed = {s["id"]: s["placement"] for s in r.json()["steps"]}
    assert (placed["fit"]["provider"], placed["fit"]["offer"]["id"]) == ("vastai", "1xA100-80GB")
    assert placed["fit"]["runner_up"]["provider"] == "runpod" and "cheapest of 3" in placed["fit"]["why"]
    assert placed["a"]["deployment"] == "runpod-nvidia-rtx-a4000"
    shown = mlops("plan", str(f), module="providers", env=FLEET).stdout
    assert "placement:" in shown and "vastai-1xa100-80gb: 1 step(s), 0.98 USD/h" in shown
    assert "runner-up: $0.21/h more: runpod" in shown
    out = tmp_path / "plan.json"
    assert mlops("plan", str(f), "--out", str(out), module="providers", env=FLEET).code == 0
    # a Runner given the placed plan checks remote steps against their offer, not this machine (no GPU)
    r = mlops("execute", str(out), "--json", "--no-cache")
    assert r.code == 0, r
    assert r.json()["outputs"] == {"y": 1}
    tampered = json.loads(out.read_text())
    tampered["steps"][0]["resources"]["memory"] = "lots"  # plan files are untrusted: refused, not crashed
    out.write_text(json.dumps(tampered))
    r = mlops("execute", str(out), "--json")
    assert r.code == 2 and "malformed resources.memory 'lots'" in r.stdout and "Traceback" not in r.stderr
    r = mlops("run", str(f), module="providers", env=FLEET)
    assert r.code == 2 and "steps placed on vastai cannot run on this machine: fit" in r.stderr
    assert "mlops deploy" in r.stderr
