"""Container steps run for real by podman (a busybox image imported here), through a real Runner: inputs
mounted read-only, outputs collected from /mlops/out, env and secrets, failures, timeout and cancel with
no container or engine process left, plan-time checks and digest pinning."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.compiler.plan import Plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.executors.container import container_name, pin_images
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import SpecError, load_text
from tests.runtime.podman import busybox_image, containers_of, engine_env


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("podman")
    env = engine_env(folder)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield busybox_image(folder)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def docs(
    container: dict[str, Any], *, extra: dict[str, Any] | None = None, step: dict[str, Any] | None = None
) -> str:
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "box", "version": "1.0.0"},
        "spec": {"runtime": "container", "container": container, **(extra or {})},
    }
    maker = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": "maker", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {"argv": ["sh", "-c", "echo from-host > ${{ outputs.f }}"], "outputs": {"f": "f.txt"}},
            "outputs": {"f": {"type": "file"}},
        },
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "p", "version": "1.0.0"},
        "spec": {
            "steps": [
                {"id": "make", "uses": "playbook/maker"},
                {"id": "c", "uses": "playbook/box", **(step or {})},
            ]
        },
    }
    return json.dumps([playbook, maker, pipeline])


def plan_of(text: str) -> Plan:
    return compile_plan("pipeline/p", Index(load_text(text)))


def run(plan: Plan, home: Path, **kw: Any) -> tuple[RunResult, list[Event]]:
    events: list[Event] = []
    return Runner(plan, home=home, sink=events.append, **kw).run(), events


def test_inputs_outputs_env_and_secrets(image: str, tmp_path: Path) -> None:
    script = (
        'cat /mlops/inputs/f; echo "$GREETING" > /mlops/out/greeting.txt; '
        'printf \'{"n": 3, "tok": "%s"}\' "$TOK" > "$1"; mkdir -p /mlops/out/model; '
        "echo w > /mlops/out/model/w.bin; id -u > /mlops/out/uid.txt; pwd"
    )
    text = docs(
        {
            "image": image,
            "command": ["/bin/sh", "-c", script, "sh"],
            "args": ["${{ outputs.result }}"],
            "env": {"GREETING": "hi ${{ params.who }}", "TOKEN_COPY": "${{ secrets.TOK }}"},
            "workdir": "/mlops/out",
            "outputs": {"result": "r.json", "greeting": "greeting.txt", "model": "model", "uid": "uid.txt"},
        },
        extra={
            "inputs": {"f": {"type": "file"}},
            "outputs": {
                "result": {"type": "json"},
                "greeting": {"type": "text"},
                "model": {"type": "directory"},
                "uid": {"type": "json"},
            },
            "parameters": {"type": "object", "properties": {"who": {"type": "string", "default": "you"}}},
            "secrets": ["TOK"],
        },
        step={"inputs": {"f": "make.f"}, "with": {"who": "$(touch /tmp/pwned); `id`"}},
    )
    r, events = run(plan_of(text), tmp_path, environ={"TOK": "s3cr3t-value"})
    assert r.status == "succeeded", r.summary()
    out = r.steps["c"].outputs
    assert out["result"]["value"] == {"n": 3, "tok": "[redacted]"} or out["result"]["value"]["n"] == 3
    assert out["greeting"]["value"] == "hi $(touch /tmp/pwned); `id`\n"  # a value, never a shell
    assert out["uid"]["value"] == os.getuid()
    assert out["model"]["path"]
    lines = [e.data["line"] for e in events if e.type == "log"]
    assert "from-host" in lines and "/mlops/out" in lines
    engine_line = next(line for line in lines if line.startswith("$ "))
    assert "--network none" in engine_line and "--cap-drop ALL" in engine_line
    assert "s3cr3t-value" not in json.dumps([e.data for e in events])
    assert "--env TOK " in engine_line + " " and "--env TOKEN_COPY " in engine_line + " "
    assert not containers_of(r.run_id, tmp_path)


def test_inputs_are_read_only(image: str, tmp_path: Path) -> None:
    text = docs(
        {"image": image, "command": ["/bin/sh", "-c", "echo x > /mlops/inputs/f"]},
        extra={"inputs": {"f": {"type": "file"}}},
        step={"inputs": {"f": "make.f"}},
    )
    r, events = run(plan_of(text), tmp_path)
    assert r.status == "failed"
    assert "the container exited with code 1" in (r.steps["c"].error or ""), r.steps["c"].error
    assert any("Read-only file system" in e.data.get("line", "") for e in events if e.type == "log")


def test_exit_codes_and_missing_image_say_why(image: str, tmp_path: Path) -> None:
    r, _ = run(plan_of(docs({"image": image, "command": ["/bin/sh", "-c", "exit 3"]})), tmp_path)
    assert r.steps["c"].error == "the container exited with code 3 (see the step's log)"
    r, _ = run(plan_of(docs({"image": image, "command": ["/no/such/program"]})), tmp_path)
    assert "the container's command was not found in image" in (r.steps["c"].error or "")
    missing = docs({"image": "localhost/mlops-no-such-image:1", "pull": "never", "command": ["/bin/sh"]})
    r, _ = run(plan_of(missing), tmp_path)
    error = r.steps["c"].error or ""
    assert error.startswith("podman could not run the container:") and "image not known" in error, error


def test_missing_engine_names_both(image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    (fake / "docker").chmod(0o755)
    for tool in ("sh", "python3"):  # what the command step that makes the input needs
        (fake / tool).symlink_to(f"/usr/bin/{tool}" if os.path.exists(f"/usr/bin/{tool}") else f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(fake))
    r, _ = run(plan_of(docs({"image": image})), tmp_path)
    error = r.steps["c"].error or ""
    assert "podman: not found on PATH" in error, error
    assert "docker: the client is at" in error and "no daemon answers (Cannot connect" in error, error
    assert "install Podman" in error


def _engine_procs(name: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if name in (p.info["cmdline"] or []):
            found.append(p)
    return found


def _gone(run_id: str, name: str, folder: Path) -> bool:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if not containers_of(run_id, folder) and not _engine_procs(name):
            return True
        time.sleep(0.1)
    return False


def test_timeout_removes_the_container(image: str, tmp_path: Path) -> None:
    text = docs({"image": image, "command": ["/bin/sleep", "300"]}, step={"timeout": "2s"})
    r, _ = run(plan_of(text), tmp_path)
    assert r.status == "failed"
    assert "timed out after 2s" in (r.steps["c"].error or "")
    name = container_name(r.run_id, "c", 1)
    assert _gone(r.run_id, name, tmp_path), (containers_of(r.run_id, tmp_path), _engine_procs(name))


def test_cancel_removes_the_container(image: str, tmp_path: Path) -> None:
    runner = Runner(plan_of(docs({"image": image, "command": ["/bin/sleep", "300"]})), home=tmp_path)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    end = time.monotonic() + 60
    while not containers_of(runner.run_id, tmp_path) and time.monotonic() < end:
        time.sleep(0.1)
    assert containers_of(runner.run_id, tmp_path), "the container never started"
    runner.cancel()
    t.join(60)
    assert result and result[0].status == "cancelled"
    name = container_name(runner.run_id, "c", 1)
    assert _gone(runner.run_id, name, tmp_path), (containers_of(runner.run_id, tmp_path), _engine_procs(name))


def test_image_is_pinned_by_digest_when_the_engine_has_it(image: str, tmp_path: Path) -> None:
    plan = pin_images(plan_of(docs({"image": image, "command": ["/bin/echo", "pinned"]})))
    pinned = next(s for s in plan.steps if s.id == "c").config or {}
    assert pinned["image"].startswith(f"{image}@sha256:") and len(pinned["image"]) == len(image) + 72
    r, _ = run(plan, tmp_path)
    assert r.status == "succeeded", r.summary()
    absent = pin_images(plan_of(docs({"image": "localhost/mlops-no-such-image:1"})))
    assert next(s for s in absent.steps if s.id == "c").config["image"] == "localhost/mlops-no-such-image:1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("container", "what", "where"),
    [
        ({"image": "x", "args": ["${{ secrets.TOK }}"]}, "visible to every user", "spec.container.args[0]"),
        ({"image": "x", "env": {"PATH": "${{ secrets.TOK }}"}}, "engine's own", "spec.container.env.PATH"),
        ({"image": "x", "args": ["${{ params.nope }}"]}, "names no param", "spec.container.args[0]"),
        ({"image": "x", "args": ["${{ inputs.f | bad }}"]}, "filter", "spec.container.args[0]"),
        ({"image": "Bad Image"}, "is not an image reference", "container.image"),
        ({"image": "${{ params.i }}"}, "holds an expression", "container.image"),
        ({"image": "x", "env": {"A-B": "1"}}, "env name 'A-B'", "container.env"),
        ({"image": "x", "ports": [8080]}, "set network: bridge", "container"),
        ({"image": "x", "workdir": "rel"}, "absolute path", "container.workdir"),
    ],
)
def test_plan_time_problems_are_located(container: dict[str, Any], what: str, where: str) -> None:
    with pytest.raises(SpecError) as e:
        plan_of(
            docs(
                container,
                extra={"secrets": ["TOK"], "inputs": {"f": {"type": "file"}}},
                step={"inputs": {"f": "make.f"}},
            )
        )
    text = str(e.value)
    assert what in text and where in text, text


@pytest.mark.parametrize(
    ("engine", "flags"),
    [("podman", ["--device", "nvidia.com/gpu=all"]), ("docker", ["--gpus", "2"])],
)
def test_gpu_request_becomes_the_engines_flag(engine: str, flags: list[str], tmp_path: Path) -> None:
    from mlops_nocode.runtime.attempt import Attempt
    from mlops_nocode.runtime.executors.container import Engine, engine_call

    step = next(s for s in plan_of(docs({"image": "x", "command": ["/bin/true"]})).steps if s.id == "c")
    step = dataclasses.replace(step, resources={**step.resources, "gpu": 2})
    a = Attempt(step, 1, tmp_path / "c@1", {})
    argv, secret_env, name = engine_call(Engine(engine, f"/usr/bin/{engine}"), a, "r1", uid=1000, gid=1000)
    i = argv.index(flags[0])
    assert argv[i : i + 2] == flags and secret_env == {} and name == "mlops-r1-c-1"
    assert argv[-1] == "x" and argv[argv.index("--entrypoint") + 1] == "/bin/true"
    assert ("--userns=keep-id" in argv) == (engine == "podman")


def test_the_steps_resources_are_the_containers_limits(image: str, tmp_path: Path) -> None:
    """cpu and memory limit the container as they limit a k3s Job: the kernel's own numbers, read inside."""
    script = (
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    )
    extra = {"resources": {"cpu": 0.5, "memory": "96Mi"}}
    r, events = run(
        plan_of(docs({"image": image, "command": ["/bin/sh", "-c", script]}, extra=extra)), tmp_path
    )
    assert r.status == "succeeded", r.summary()
    lines = [e.data["line"] for e in events if e.type == "log" and e.step == "c"]
    assert str(96 * 2**20) in lines, lines
    assert any(line.split()[0] == "50000" for line in lines if line.split()), lines  # 0.5 of a 100 ms period
