"""Steps placed on a `ray` target run as Ray tasks on a real multi-node cluster on loopback.

One cluster for the module (a head node and a node holding the custom resource `special`); the node-loss
test adds a node of its own and kills it. The real Runner drives the runs in this process; one run goes
through `mlops run --target ray` as a real process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
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
from mlops_nocode.runtime.executors import ray_conn
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text
from tests.ray.cluster import Cluster

WORK = """
import os, sys, time

def main(ctx, n: int = 0, wait: str = "", once: str = ""):
    print(f"start {n} on", os.environ.get("MLOPS_STEP_ID"), flush=True)
    ctx.metric("n", n)
    if once:  # only the first attempt waits (it leaves this file)
        if os.path.exists(once):
            wait = ""
        open(once, "w").close()
    if wait:  # a file to wait for: the step goes on once the test creates it
        deadline = time.time() + 60
        while not os.path.exists(wait) and time.time() < deadline:
            time.sleep(0.02)
    print("done", n, file=sys.stderr, flush=True)
    return {"value": n * 2}
"""

PLAYBOOKS = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: work, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(WORK)}}}
  outputs: {{value: {{type: json}}}}
  parameters:
    type: object
    properties: {{n: {{type: integer}}, wait: {{type: string}}, once: {{type: string}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: special-work, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(WORK)}}}
  outputs: {{value: {{type: json}}}}
  parameters: {{type: object, properties: {{n: {{type: integer}}, wait: {{type: string}}}}}}
  resources: {{cpu: 1, custom: {{special: 1}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: tpu-work, version: 1.0.0}}
spec:
  runtime: python
  python: {{code: {json.dumps(WORK)}}}
  resources: {{custom: {{tpu: 4}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: shout, version: 1.0.0}}
spec:
  runtime: command
  command:
    argv:
      - sh
      - -c
      - 'echo "got $0"; echo "\\"$0$0\\"" > "$1"; echo $$ > "$2"; sleep "$3"'
      - "${{{{ params.word }}}}"
      - "${{{{ outputs.twice }}}}"
      - "${{{{ params.pidfile }}}}"
      - "${{{{ params.sleep }}}}"
    outputs: {{twice: twice.json}}
  outputs: {{twice: {{type: json}}}}
  parameters:
    type: object
    properties: {{word: {{type: string}}, pidfile: {{type: string}}, sleep: {{type: string}}}}
"""


LEAKY = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: leaky, version: 1.0.0}
spec:
  runtime: python
  python:
    code: "import os\\ndef main():\\n    print('token', os.environ['TOK'])\\n    return {'echo': 'ok'}\\n"
  secrets: [TOK]
  outputs: {echo: {type: text}}
"""
"""A step that prints its secret (the Runner masks it)."""

STUBBORN = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: stubborn, version: 1.0.0}
spec:
  runtime: command
  command:
    argv: [sh, -c, 'trap "" TERM; echo $$ > "$0"; sleep 300; echo after', "${{ params.pidfile }}"]
  parameters: {type: object, properties: {pidfile: {type: string}}}
"""
"""A command that ignores SIGTERM (and so does its child): only the forced cancel stops it."""


def pipeline(steps: str) -> Plan:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: fan, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""
    return compile_plan(
        "pipeline/fan", Index(load_text(PLAYBOOKS + "---" + STUBBORN + "---" + LEAKY + "---" + spec))
    )


def on_ray(plan: Plan, **options: Any) -> Plan:
    """The plan placed on a `ray` target with these options (as placement writes it)."""
    target = {"provider": "ray", "options": options}
    placement = {"provider": "ray", "deployment": "ray", "offer": None, "price_per_hour": 0.0}
    steps = tuple(dataclasses.replace(s, target=target, placement=placement) for s in plan.steps)
    return dataclasses.replace(plan, steps=steps)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        c.start_head(cpus=1)
        c.wait_started()  # the nodes join a head that is up (all at once overloads a small machine)
        c.add_node("special", cpus=2, resources={"special": 2})
        c.add_node("doomed", cpus=1, resources={"doomed": 1})  # the node-loss test kills it
        c.wait_started()
        ray_conn.connect(c.address)
        c.ids = c.node_ids(3)
        yield c
    finally:
        ray_conn.disconnect()
        c.stop()


def run(plan: Plan, home: Path, sink: Any = None, **kw: Any) -> tuple[Any, list[Event]]:
    events: list[Event] = []

    def both(e: Event) -> None:
        events.append(e)
        if sink is not None:
            sink(e)

    result = Runner(plan, sink=both, home=home, **kw).run()
    return result, events


def test_fan_out_lands_on_the_special_node_with_live_logs(cluster: Cluster, tmp_path: Path) -> None:
    steps = "".join(
        f"- {{id: s{i}, uses: playbook/special-work, with: {{n: {i}, wait: '{tmp_path / f'go{i}'}'}}}}\n"
        for i in range(4)
    )
    seen_before_end: list[str] = []

    def sink(e: Event) -> None:  # each step waits until its first log line has arrived here
        line = str(e.data.get("line"))
        if e.type == "log" and line.startswith("start"):
            seen_before_end.append(str(e.step))
            (tmp_path / f"go{line.split()[1]}").write_text("go")

    plan = on_ray(pipeline(steps), address=cluster.address)
    result, events = run(plan, tmp_path, sink=sink, use_cache=False)
    assert result.status == "succeeded", {k: s.error for k, s in result.steps.items()}
    assert sorted(seen_before_end) == ["s0", "s1", "s2", "s3"]
    finished = [e for e in events if e.type == "step.finished"]
    assert {e.data["node"]["id"] for e in finished} == {cluster.ids["special"]}
    assert all(e.data["node"]["ip"] == "127.0.0.1" for e in finished)
    metrics = sorted(e.data["value"] for e in events if e.type == "metric")
    assert metrics == [0.0, 1.0, 2.0, 3.0]
    logs = [str(e.data["line"]) for e in events if e.type == "log" and e.step == "s3"]
    assert logs[0] == "start 3 on s3" and "done 3" in logs


def test_python_and_command_steps_with_outputs_then_a_cache_hit(cluster: Cluster, tmp_path: Path) -> None:
    plan = on_ray(
        pipeline(
            """
            - {id: py, uses: playbook/work, with: {n: 21}}
            - {id: cmd, uses: playbook/shout, with: {word: hey, pidfile: /dev/null, sleep: '0'}}
            """
        ),
        address=cluster.address,
        strategy="SPREAD",
    )
    result, events = run(plan, tmp_path)
    assert result.status == "succeeded", {k: s.error for k, s in result.steps.items()}
    assert result.steps["py"].outputs["value"]["value"] == 42
    assert result.steps["cmd"].outputs["twice"]["value"] == "heyhey"
    assert any(e.type == "log" and e.step == "cmd" and e.data["line"] == "got hey" for e in events)
    again, events = run(plan, tmp_path)
    assert again.status == "succeeded"
    cached = [e for e in events if e.type == "step.finished"]
    assert len(cached) == 2 and all(e.data["cached"] for e in cached)


def test_a_secret_reaches_the_task_and_is_masked_in_its_events(cluster: Cluster, tmp_path: Path) -> None:
    secret = "hunter2-" + os.urandom(8).hex()
    plan = on_ray(pipeline("- {id: s, uses: playbook/leaky}"), address=cluster.address)
    result, events = run(plan, tmp_path, use_cache=False, environ={**os.environ, "TOK": secret})
    assert result.status == "succeeded", result.steps["s"].error
    assert any(e.type == "log" and str(e.data["line"]).startswith("token ") for e in events)
    assert secret not in json.dumps([e.data for e in events])
    assert not [
        f for f in (tmp_path / "runs").rglob("*") if f.is_file() and secret in f.read_text(errors="replace")
    ]


def _wait(cond: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_cancel_mid_run_leaves_no_task_or_process(cluster: Cluster, tmp_path: Path) -> None:
    pids = [tmp_path / f"pid{i}" for i in range(3)]
    steps = (
        f"- {{id: c0, uses: playbook/shout, with: {{word: w, pidfile: '{pids[0]}', sleep: '300'}}}}\n"
        f"- {{id: c1, uses: playbook/stubborn, with: {{pidfile: '{pids[1]}'}}}}\n"
        f"- {{id: c2, uses: playbook/stubborn, with: {{pidfile: '{pids[2]}'}}}}\n"
    )
    runner = Runner(on_ray(pipeline(steps), address=cluster.address), home=tmp_path, use_cache=False)
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(runner.run()))
    t.start()
    written = [p for p in pids if p.exists() and p.read_text().strip()]
    _wait(lambda: len([p for p in pids if p.exists() and p.read_text().strip()]) >= 2, "two steps started")
    written = [p for p in pids if p.exists() and p.read_text().strip()]
    started = [pid for p in written for pid in _tree(int(p.read_text()))]
    assert len(started) >= 4  # each shell and its sleep
    runner.cancel()
    t.join(60)
    assert box and box[0].status == "cancelled"
    _wait(lambda: not any(_alive(pid) for pid in started), "step processes gone")
    _wait(lambda: not _running_tasks(), "no Ray task left running", timeout=30)


def _tree(pid: int) -> list[int]:
    """A step's process and its children, once it has started its child."""
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(pid).children(recursive=True)
            if children:
                return [pid, *(c.pid for c in children)]
        assert time.monotonic() < deadline, f"step process {pid} started no child"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


def _running_tasks() -> bool:
    """Whether a task still holds CPUs of the cluster (the state API would need the dashboard)."""
    import ray

    return bool(ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0))


def test_a_node_lost_mid_step_fails_the_attempt_and_the_retry_runs_elsewhere(
    cluster: Cluster, tmp_path: Path
) -> None:
    doomed = cluster.ids["doomed"]
    never, first = tmp_path / "never", tmp_path / "first"
    plan = pipeline(f"- {{id: s, uses: playbook/work, with: {{n: 1, wait: '{never}', once: '{first}'}}}}")
    plan = dataclasses.replace(plan, steps=(dataclasses.replace(plan.steps[0], retries=1),))
    plan = on_ray(plan, address=cluster.address, node_id=doomed, soft=True)
    box: list[Any] = []
    events: list[Event] = []
    runner = Runner(plan, home=tmp_path, use_cache=False, sink=events.append)
    t = threading.Thread(target=lambda: box.append(runner.run()))
    t.start()
    _wait(first.exists, "the first attempt started")
    cluster.kill_node("doomed")
    t.join(120)
    assert box and box[0].status == "succeeded", box and box[0].steps["s"].error
    failed = [e for e in events if e.type == "step.failed"]
    assert len(failed) == 1 and "was lost" in failed[0].data["error"]
    assert doomed[:12] in failed[0].data["error"]
    finished = next(e for e in events if e.type == "step.finished")
    assert finished.data["attempt"] == 2 and finished.data["node"]["id"] != doomed


def test_unreachable_cluster_and_infeasible_resources_fail_at_start(cluster: Cluster, tmp_path: Path) -> None:
    plan = on_ray(pipeline("- {id: s, uses: playbook/tpu-work}"),
                  address=cluster.address)  # fmt: skip
    result, _ = run(plan, tmp_path)
    error = str(result.steps["s"].error)
    assert result.status == "failed" and "no node of the Ray cluster can run this step" in error
    assert "tpu=4" in error and "special=2" in error
    other = on_ray(pipeline("- {id: s, uses: playbook/work}"), address="127.0.0.1:1")
    result, _ = run(other, tmp_path)
    error = str(result.steps["s"].error)
    assert "connected to the Ray cluster at" in error and "127.0.0.1:1" in error


def test_unreachable_address_names_it_and_the_fix(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from mlops_nocode.runtime.attempt import StepFailure
        from mlops_nocode.runtime.executors import ray_conn
        try:
            ray_conn.connect("127.0.0.1:1")
        except StepFailure as e:
            print(e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "the Ray cluster at 127.0.0.1:1 cannot be reached" in out.stdout, out.stderr
    assert "RAY_ADDRESS" in out.stdout


def test_mlops_run_target_ray_as_a_process(cluster: Cluster, tmp_path: Path) -> None:
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(PLAYBOOKS + "---" + pipeline_text("- {id: s, uses: playbook/work, with: {n: 5}}"))
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "MLOPS_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-m", "mlops_nocode.cli.main", "run", str(spec), "--target", "ray"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    runs = list((tmp_path / "home" / "runs").glob("*/events.jsonl"))
    events = [json.loads(line) for line in runs[0].read_text().splitlines()]
    finished = [e for e in events if e["type"] == "step.finished"]
    assert finished and finished[0]["data"]["node"]["ip"] == "127.0.0.1"


def pipeline_text(steps: str) -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: fan, version: 1.0.0}}
spec:
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""


def test_zz_cluster_listens_on_loopback_only_and_stops_clean(cluster: Cluster) -> None:
    procs = cluster.leftovers()
    assert procs
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    assert c.laddr.ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1"), (p.info, c)
    watchers = [
        p for p in psutil.process_iter(["cmdline"]) if "PR_SET_PDEATHSIG" in " ".join(p.info["cmdline"] or ())
    ]
    assert [p for p in watchers if _alive(p.pid)] == []  # every command step's watcher and sentinel ended
    ray_conn.disconnect()
    cluster.stop()
    assert cluster.leftovers() == []
