"""serve-llm: without vLLM the step fails naming what to install; with a stand-in `vllm` on PATH (it starts
the scripted OpenAI-compatible backend of tests/fakellm.py, which stands in for a model) the endpoint is
registered as a model route that answers through integrations/litellm/client.chat, and the route goes
when the service stops."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.integrations.litellm.routes import load_routes
from mlops_nocode.runtime import services as sv
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_file, load_text
from tests.conftest import none_left

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: llm-serve, version: 1.0.0}
spec:
  steps:
    - {id: llm, uses: playbook/serve-llm, with: WITH}
"""
STAND_IN = """#!PYTHON
import json, os, sys
a = sys.argv
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vllm-argv.json"), "w") as f:
    json.dump(a[1:], f)
port = a[a.index("--port") + 1]
here = os.path.dirname(os.path.abspath(__file__))
os.execv(sys.executable, [sys.executable, os.path.join(here, "fakellm.py"), "--port", port])
"""


def run(with_: dict[str, Any], sink: Any = None) -> RunResult:
    docs = load_file(ROOT / "catalogue" / "playbooks" / "serve-llm.yaml")
    plan = compile_plan(
        "pipeline/llm-serve", Index(docs + load_text(PIPELINE.replace("WITH", json.dumps(with_))))
    )
    return Runner(plan, sink=sink or (lambda e: None)).run()


def test_without_vllm_the_step_names_what_to_install(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    r = run({"model": "Qwen/Qwen2.5-0.5B-Instruct", "name": "no-vllm"})
    assert r.status == "failed"
    error = r.steps["llm"].error or ""
    assert "vLLM is not installed" in error and "pip install vllm" in error, error
    assert "served-llm" not in load_routes(home)
    assert none_left("--service no-vllm")


def test_stand_in_vllm_is_served_and_routed_then_unrouted(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(ROOT / "tests" / "fakellm.py", bin_dir / "fakellm.py")
    exe = bin_dir / "vllm"
    exe.write_text(STAND_IN.replace("PYTHON", sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    seen: dict[str, Any] = {}

    def sink(e: Event) -> None:
        if e.type == "step.finished" and e.step == "llm":
            from mlops_nocode.integrations.litellm.client import chat

            seen["route"] = load_routes(home).get("tiny")
            messages = [{"role": "user", "content": "hello there"}]
            seen["answer"] = chat(home, "tiny", messages, secrets={}, timeout=30).text

    r = run({"model": "Qwen/Qwen2.5-0.5B-Instruct", "name": "tiny-llm", "route": "tiny"}, sink)
    assert r.status == "succeeded", r.summary()
    endpoint = r.steps["llm"].outputs["endpoint"]["value"]
    route = seen["route"]
    assert route is not None and route.source == "serving" and route.service == "tiny-llm"
    assert route.api_base == endpoint["url"] + "/v1" and route.model == "openai/Qwen/Qwen2.5-0.5B-Instruct"
    assert seen["answer"] == "echo: hello there"
    argv = json.loads((tmp_path / "vllm-argv.json").read_text())
    port = endpoint["url"].rsplit(":", 1)[1]
    assert argv[:6] == ["serve", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "127.0.0.1", "--port", port]
    # the run is over: the service and its route are gone
    assert "tiny" not in load_routes(home)
    assert sv.load(home, "tiny-llm") is None
    assert none_left("--service tiny-llm")
    assert none_left(str(bin_dir / "fakellm.py"))


def test_a_model_name_cannot_become_an_engine_flag(home: Path) -> None:
    from mlops_nocode.spec import SpecError

    with pytest.raises(SpecError) as err:
        run({"model": "--trust-remote-code", "name": "bad-llm"})
    assert "model" in str(err.value)


@pytest.mark.parametrize("args", ["--host 0.0.0.0", "--port=80", "'unclosed"])
def test_engine_args_cannot_move_the_service(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text("#!/bin/sh\nexit 3\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    r = run({"model": "m", "name": "moved", "engine_args": args})
    assert r.status == "failed"
    error = r.steps["llm"].error or ""
    assert "engine_args" in error and "code 2" in error, error
    assert none_left("--service moved")
