"""The Runner hands GPUs to steps (a fake NVML with 1-2 devices; real Runner, real step processes):
each GPU step its own devices, never more at once than there are, queued until free, released whatever
the end, and the devices' utilisation and memory reported as the steps' metrics."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.gpu_support import fake_nvml, fake_nvml_env, gpu

UUIDS = (gpu(0)["uuid"], gpu(1)["uuid"])
# The step records what it sees and when it ran, then waits (polling, bounded) for the test's go file.
CODE = """
import json, os, pathlib, time

def main(tag: str, folder: str, fail: bool = False, forever: bool = False):
    here = pathlib.Path(folder)
    start = time.time()
    (here / (tag + ".started")).write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
    deadline = time.monotonic() + 60
    while (forever or not (here / ("go-" + tag)).exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    rec = {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}
    (here / (tag + ".json")).write_text(json.dumps(rec))
    if fail:
        raise RuntimeError("the step failed on purpose")
    return {"cuda": rec["cuda"]}
"""


def plan_of(steps: str, folder: Path, gpu_resources: str = "{gpu: 1}", two: bool = False) -> Any:
    text = (
        (TWO.replace("FOLDER", json.dumps(str(folder))) if two else "")
        + f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: on-gpu, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(CODE)}}}
  outputs: {{cuda: {{type: json}}}}
  parameters:
    type: object
    properties:
      tag: {{type: string}}
      folder: {{type: string, default: {json.dumps(str(folder))}}}
      fail: {{type: boolean, default: false}}
      forever: {{type: boolean, default: false}}
  resources: {gpu_resources}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: on-cpu, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(CODE)}}}
  outputs: {{cuda: {{type: json}}}}
  parameters:
    type: object
    properties:
      tag: {{type: string}}
      folder: {{type: string, default: {json.dumps(str(folder))}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: g, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    )
    return compile_plan("pipeline/g", Index(load_text(text)))


TWO = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: on-gpu2, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(CODE)}}}
  outputs: {{cuda: {{type: json}}}}
  parameters:
    type: object
    properties: {{tag: {{type: string}}, folder: {{type: string, default: FOLDER}}}}
  resources: {{gpu: 2}}
---
"""


class Background:
    """A Runner run in a thread; its events readable while it runs."""

    def __init__(self, plan: Any, **kw: Any) -> None:
        self.events: list[Event] = []
        self.runner = Runner(plan, sink=self.events.append, **kw)
        self.result: RunResult | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.runner.run()

    def wait_for(self, what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert self.thread.is_alive() or cond(), f"the run ended before {what}: {self.events[-5:]}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.events[-5:]}"
            time.sleep(0.02)

    def finish(self, timeout: float = 60.0) -> RunResult:
        self.thread.join(timeout)
        assert self.result is not None, "the run did not end"
        return self.result

    def of(self, type_: str, step: str | None = None) -> list[Event]:
        return [e for e in list(self.events) if e.type == type_ and (step is None or e.step == step)]


def devices_free(home: Path) -> None:
    for lock in (home / "gpus").iterdir():
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while a device is still held
        finally:
            os.close(fd)


def test_two_gpu_steps_share_two_devices_and_a_third_waits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, home: Path
) -> None:
    devices = [gpu(0), gpu(1)]
    fake_nvml(monkeypatch, devices)
    plan = plan_of(
        """
- {id: a, uses: playbook/on-gpu, with: {tag: a}}
- {id: b, uses: playbook/on-gpu, with: {tag: b}}
- {id: c, uses: playbook/on-gpu, with: {tag: c}}
- {id: cpu, uses: playbook/on-cpu, with: {tag: cpu}}
""",
        tmp_path,
    )
    run = Background(plan, max_parallel=4)
    started = lambda *tags: all((tmp_path / f"{t}.started").exists() for t in tags)  # noqa: E731
    run.wait_for("two GPU steps and the CPU step to start", lambda: started("a", "b", "cpu"))
    run.wait_for("c to wait for a device", lambda: bool(run.of("step.waiting", "c")))
    [waiting] = run.of("step.waiting", "c")
    assert waiting.data["reason"] == "waits for 1 GPU: steps a, b hold the devices that fit"
    assert not started("c") and not run.of("step.started", "c")
    (tmp_path / "go-cpu").touch()
    (tmp_path / "go-b").touch()
    run.wait_for("c to start once b ended", lambda: started("c"))
    for tag in ("a", "c"):
        (tmp_path / f"go-{tag}").touch()
    result = run.finish()
    assert result.status == "succeeded", result.summary()
    recs = {t: json.loads((tmp_path / f"{t}.json").read_text()) for t in ("a", "b", "c", "cpu")}
    uuids = {d["uuid"] for d in devices}
    assert {recs["a"]["cuda"], recs["b"]["cuda"]} == uuids  # read by the steps themselves
    assert recs["c"]["cuda"] == recs["b"]["cuda"] and recs["cpu"]["cuda"] == ""
    assert recs["c"]["start"] >= recs["b"]["end"]
    gpu_recs = [recs[t] for t in ("a", "b", "c")]
    for r in gpu_recs:  # never more than 2 at once, from the steps' own start and end times
        assert sum(1 for o in gpu_recs if o["start"] <= r["start"] < o["end"]) <= 2
    logs = [e.data["line"] for e in run.of("log", "a")]
    assert any(line.startswith("GPUs ") and "A100-80GB-SXM, 80Gi" in line for line in logs)
    devices_free(home)


def test_devices_are_released_after_a_failure_a_timeout_and_a_cancel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, home: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0)])
    plan = plan_of(
        """
- {id: fails, uses: playbook/on-gpu, with: {tag: fails, fail: true}}
- {id: slow, uses: playbook/on-gpu, with: {tag: slow, forever: true}, timeout: 1s}
- {id: after, uses: playbook/on-gpu, with: {tag: after}}
""",
        tmp_path,
    )
    (tmp_path / "go-fails").touch()
    (tmp_path / "go-after").touch()
    run = Background(plan, max_parallel=3)
    result = run.finish()
    states = {k: v.status for k, v in result.steps.items()}
    assert states == {"fails": "failed", "slow": "failed", "after": "succeeded"}, result.summary()
    assert "timed out" in (result.steps["slow"].error or "")
    order = [e.step for e in run.events if e.type == "step.started"]
    assert order == ["fails", "slow", "after"]  # one device: each waited for the one before to end
    assert {e.step for e in run.of("step.waiting")} == {"slow", "after"}
    devices_free(home)

    cancelled = Background(plan_of("- {id: held, uses: playbook/on-gpu, with: {tag: held}}", tmp_path))
    cancelled.wait_for("the step to start", lambda: (tmp_path / "held.started").exists())
    cancelled.runner.cancel()
    assert cancelled.finish().status == "cancelled"
    devices_free(home)


def test_a_gpu_need_no_device_meets_fails_at_once_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0, "NVIDIA GeForce RTX 4090", 24564)])
    plan = plan_of(
        "- {id: big, uses: playbook/on-gpu, with: {tag: big}}", tmp_path, "{gpu: 1, gpu_memory: 80Gi}"
    )
    run = Background(plan)
    result = run.finish()
    assert result.status == "failed"
    assert result.steps["big"].error == (
        "needs 1 GPU with 80Gi; this machine has 0 that fit (its GPUs: 0: RTX-4090 24Gi): "
        "place the step on a target that has such GPUs"
    )
    assert not (tmp_path / "big.started").exists()


def test_gpu_utilisation_and_memory_are_step_metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_nvml(monkeypatch, [gpu(0, util=40, used_mib=2048), gpu(1, util=80, used_mib=1024)])
    monkeypatch.setenv("GPU_SAMPLE_INTERVAL", "0.05")
    plan = plan_of("- {id: train, uses: playbook/on-gpu, with: {tag: train}}", tmp_path, "{gpu: 2}")
    run = Background(plan)
    run.wait_for("a GPU sample", lambda: bool(run.of("metric", "train")))
    (tmp_path / "go-train").touch()
    assert run.finish().status == "succeeded"
    metrics = {e.data["name"]: e.data for e in run.of("metric", "train")}
    assert metrics["gpu_utilization_pct"]["value"] == 60.0  # the mean of its devices
    assert metrics["gpu_memory_used_mib"]["value"] == 3072  # their sum
    assert metrics["gpu_utilization_pct_max"]["value"] == 60.0
    assert metrics["gpu_memory_used_mib_max"]["value"] == 3072
    assert metrics["gpu_utilization_pct"]["labels"] == {"gpus": "0,1", "source": "nvml"}


@pytest.mark.parametrize(
    ("engine", "flags"),
    [
        ("podman", ["--device", f"nvidia.com/gpu={UUIDS[0]}", "--device", f"nvidia.com/gpu={UUIDS[1]}"]),
        ("docker", ["--gpus", f'"device={UUIDS[0]},{UUIDS[1]}"']),
    ],
)
def test_a_container_step_gets_exactly_its_devices(engine: str, flags: list[str], tmp_path: Path) -> None:
    from mlops_nocode.runtime.attempt import Attempt
    from mlops_nocode.runtime.executors.container import Engine, engine_call
    from tests.runtime.test_container import docs as container_docs
    from tests.runtime.test_container import plan_of as container_plan

    plan = container_plan(container_docs({"image": "x", "command": ["/bin/true"]}))
    step = next(s for s in plan.steps if s.id == "c")
    step = dataclasses.replace(step, resources={**step.resources, "gpu": 2})
    a = Attempt(step, 1, tmp_path / "c@1", {}, gpus=UUIDS)
    argv, _, _ = engine_call(Engine(engine, f"/usr/bin/{engine}"), a, "r1", uid=1000, gid=1000)
    i = argv.index(flags[0])
    assert argv[i : i + len(flags)] == flags and "all" not in " ".join(argv)


def test_steps_another_scheduler_places_keep_their_devices_to_it(tmp_path: Path) -> None:
    from mlops_nocode.runtime.gpusched import scheduled_here

    step = plan_of("- {id: a, uses: playbook/on-gpu, with: {tag: a}}", tmp_path).steps[0]
    on = lambda runtime, provider: dataclasses.replace(  # noqa: E731
        step, runtime=runtime, placement={"provider": provider}
    )
    assert (
        scheduled_here(step)
        and scheduled_here(on("container", "local"))
        and scheduled_here(on("python", "k3s"))
    )
    assert not scheduled_here(on("container", "k3s"))  # Kubernetes gives the Job's pod its GPUs
    assert not scheduled_here(on("python", "ray")) and not scheduled_here(on("serve", "local"))


def test_mlops_run_queues_gpu_steps_and_says_why(mlops: Any, write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(
        """
        apiVersion: mlops-nocode/v1
        kind: Playbook
        metadata: {name: see, version: 1.0.0}
        spec:
          runtime: command
          command:
            argv: [/bin/sh, -c, 'printf %s "$CUDA_VISIBLE_DEVICES" > ${{ outputs.seen }}']
            outputs: {seen: seen.txt}
          outputs: {seen: {type: text}}
          resources: {gpu: 1}
        ---
        apiVersion: mlops-nocode/v1
        kind: Pipeline
        metadata: {name: two, version: 1.0.0}
        spec:
          steps:
            - {id: a, uses: playbook/see}
            - {id: b, uses: playbook/see}
          outputs: {a: a.seen, b: b.seen}
        """
    )
    r = mlops("run", str(spec), "--parallel", "2", "--json", env=fake_nvml_env(tmp_path, [gpu(0)]))
    assert r.code == 0, r
    assert r.json()["outputs"] == {"a": UUIDS[0], "b": UUIDS[0]}  # one device, one step at a time
    assert "b waits for 1 GPU: step a holds the devices that fit" in r.stderr, r


def test_without_nvml_a_gpu_step_run_as_a_stand_in_gets_no_device_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "go-a").touch()  # the real nvidia-ml-py, no driver: what `mlops execute` does off a GPU
    run = Background(plan_of("- {id: a, uses: playbook/on-gpu, with: {tag: a}}", tmp_path))
    assert run.finish().status == "succeeded"
    assert json.loads((tmp_path / "a.json").read_text())["cuda"] == os.environ.get("CUDA_VISIBLE_DEVICES")
    [line] = [e.data["line"] for e in run.of("log", "a") if "GPU" in e.data["line"]]
    assert line.startswith("no GPU handed out: this machine has none (no NVIDIA driver")


def test_a_bad_sample_interval_is_said_in_the_log_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0)])
    monkeypatch.setenv("GPU_SAMPLE_INTERVAL", "-1; rm -rf /")
    (tmp_path / "go-a").touch()
    run = Background(plan_of("- {id: a, uses: playbook/on-gpu, with: {tag: a}}", tmp_path))
    assert run.finish().status == "succeeded"
    lines = [e.data["line"] for e in run.of("log", "a")]
    assert any(line.startswith("GPU_SAMPLE_INTERVAL is invalid (") for line in lines), lines


def test_a_step_needing_several_gpus_is_not_starved_by_later_smaller_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_nvml(monkeypatch, [gpu(0), gpu(1)])
    plan = plan_of(
        """
- {id: a, uses: playbook/on-gpu, with: {tag: a}}
- {id: big, uses: playbook/on-gpu2, with: {tag: big}}
- {id: small, uses: playbook/on-gpu, with: {tag: small}}
""",
        tmp_path,
        two=True,
    )
    run = Background(plan, max_parallel=3)
    run.wait_for("a to start and the others to wait", lambda: len(run.of("step.waiting")) == 2)
    reasons = {e.step: e.data["reason"] for e in run.of("step.waiting")}
    assert reasons == {
        "big": "waits for 2 GPUs: step a holds the devices that fit",
        "small": "waits for 1 GPU: step big, waiting since before, comes first for the devices that fit",
    }
    assert not (tmp_path / "small.started").exists()  # a device is free, but big waits for it first
    (tmp_path / "go-a").touch()
    run.wait_for("big to start", lambda: (tmp_path / "big.started").exists())
    (tmp_path / "go-big").touch()
    (tmp_path / "go-small").touch()
    assert run.finish().status == "succeeded"
    recs = {t: json.loads((tmp_path / f"{t}.json").read_text()) for t in ("a", "big", "small")}
    assert recs["small"]["start"] >= recs["big"]["end"] and len(recs["big"]["cuda"].split(",")) == 2
