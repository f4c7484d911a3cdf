"""GPUs through the live gateway (a fake NVML on its import path: this machine has no GPU): the local
target's offer lists them, `auto` places a fitting GPU step on this machine, and the gateway's Runner
hands the step a device of its own (CUDA_VISIBLE_DEVICES, read by the step itself)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, wait_status
from tests.gpu_support import fake_nvml_env, gpu

DEVICES = [gpu(0, "NVIDIA L40S", 46068), gpu(1, "NVIDIA L40S", 46068)]


@pytest.fixture(scope="module")
def gpu_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("gpu-gw")
    s = Server(folder / "home", **fake_nvml_env(folder, DEVICES))
    s.start()
    try:
        with s.client(s.admin_key) as c:
            yield c
    finally:
        s.stop()


def docs(gpus: int) -> list[dict[str, Any]]:
    code = [
        sys.executable,
        "-c",
        "import os,sys; open(sys.argv[1],'w').write(os.environ['CUDA_VISIBLE_DEVICES'])",
    ]
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "see-gpus", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {"argv": [*code, "${{ outputs.seen }}"], "outputs": {"seen": "seen.txt"}},
            "outputs": {"seen": {"type": "text"}},
            "resources": {"gpu": gpus, "gpu_type": "L40S", "gpu_memory": "45Gi"},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "gpu-run", "version": "1.0.0"},
        "spec": {"steps": [{"id": "see", "uses": "playbook/see-gpus"}], "outputs": {"seen": "see.seen"}},
    }
    return [playbook, pipeline]


def test_targets_list_the_machines_gpus_and_a_gpu_step_gets_its_own_device(
    gpu_admin: httpx.Client, tmp_path: Path
) -> None:
    [local] = [t for t in gpu_admin.get("/api/v1/targets").json() if t["provider"] == "local"]
    [offer] = local["offers"]
    assert (offer["gpu_count"], offer["gpu_type"], offer["gpu_memory_gib"]) == (2, "L40S", 45)
    assert [g["uuid"] for g in offer["extra"]["gpus"]] == [d["uuid"] for d in DEVICES]
    plan = gpu_admin.post("/api/v1/plan", json={"pipeline": docs(1), "target": {"provider": "auto"}})
    assert plan.status_code == 200, plan.text
    assert plan.json()["steps"][0]["placement"]["provider"] == "local"
    r = gpu_admin.post("/api/v1/runs", json={"pipeline": docs(1)})
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    assert wait_status(gpu_admin, run_id, 60) == "succeeded"
    run = gpu_admin.get(f"/api/v1/runs/{run_id}").json()
    assert run["outputs"]["seen"] in {d["uuid"] for d in DEVICES}
    too_many = gpu_admin.post("/api/v1/plan", json={"pipeline": docs(3), "target": {"provider": "local"}})
    assert too_many.status_code == 422
    [problem] = too_many.json()["problems"]
    assert "needs 3 GPUs L40S with 45Gi, this machine has 2 that fit" in problem["what"]
