"""What the step sandbox costs: each confinement step of a fork-server child (forked the way the fork
server forks them), and a chain of command steps through the Runner (baseline: the same commands started
with `subprocess.run`, one after another)."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime import confine, sandbox
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text

PHASES = [
    "shared rules (while idle)",
    "temporary folder",
    "output folder",
    "metrics file",
    "own rules",
    "restrict",
]


def child_phases(n: int = 50) -> dict[str, float]:
    """Median milliseconds of each phase, over `n` children of a process confined like the fork server."""
    conf = sandbox.resolve()
    if not conf.confined:
        return {}
    home = Path(tempfile.mkdtemp())
    run_dir = home / "runs" / "r"
    (run_dir / "steps").mkdir(parents=True)
    (run_dir / "work").mkdir()
    box = sandbox.for_run(conf, home, run_dir, os.environ)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "fork server": confined once, then forks the children
        ruleset = confine.Ruleset(conf.abi)
        for path, kind in box.server_grants():
            ruleset.allow(path, kind)
        ruleset.restrict()
        shared = confine.open_grants([list(g) for g in box.shared])
        for i in range(n):
            child = os.fork()
            if child == 0:
                os.write(write, json.dumps(_phases(conf.abi, shared, run_dir, i)).encode() + b"\n")
                os._exit(0)
            os.waitpid(child, 0)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        rows = [json.loads(line) for line in f]
    os.waitpid(pid, 0)
    return {name: statistics.median(r[i] for r in rows) for i, name in enumerate(PHASES)}


def _phases(abi: int, shared: list[tuple[int, int, bool]], run_dir: Path, i: int) -> list[float]:
    marks = [time.perf_counter()]
    ruleset = confine.Ruleset(abi)
    for fd, rights, is_dir in shared:
        ruleset.allow_fd(fd, rights, is_dir)
    marks.append(time.perf_counter())
    base = run_dir / "steps" / f"s{i}@1"
    os.mkdir(f"{base}.tmp", 0o700)
    marks.append(time.perf_counter())
    os.makedirs(base, exist_ok=True)
    marks.append(time.perf_counter())
    events = os.open(f"{base}.events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    ruleset.allow_fd(events, confine.WRITE_FILE, False)
    os.close(events)
    marks.append(time.perf_counter())
    for path in (str(base), f"{base}.tmp", str(run_dir / "work")):
        ruleset.allow(path, "rw")
    marks.append(time.perf_counter())
    ruleset.restrict()
    marks.append(time.perf_counter())
    return [1000 * (b - a) for a, b in itertools.pairwise(marks)]


def command_chain(n: int) -> tuple[float, float]:
    """Seconds for `n` sequential `true` command steps through the Runner, and as bare processes."""
    spec = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: t, version: 1.0.0}
spec: {runtime: command, command: {argv: ["true"]}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: c, version: 1.0.0}
spec:
  steps:
""" + "".join(f"    - {{id: s{i}, uses: playbook/t}}\n" for i in range(n))
    plan = compile_plan("pipeline/c", Index(load_text(spec)))
    with tempfile.TemporaryDirectory() as tmp:
        ours = best_of(lambda: Runner(plan, home=Path(tmp), use_cache=False, max_parallel=1).run())
    bare = best_of(lambda: [subprocess.run(["true"], check=True) for _ in range(n)])
    return ours, bare


def main() -> list[dict[str, Any]]:
    os.environ["THROTTLE_DISABLE"] = "true"
    phases = child_phases()
    rows: list[dict[str, Any]] = [
        {"case": f"child: {k}", "median_ms": round(v, 3)} for k, v in phases.items()
    ]
    show("step sandbox: each confinement phase of a fork-server child (median of 50)", rows)
    n = 60
    ours, bare = command_chain(n)
    chain = [
        row(f"command chain-{n} bare processes", bare, n),
        row(f"command chain-{n} mlops runner", ours, n),
    ]
    chain[-1]["ratio_vs_bare_process"] = round(ours / bare, 3)
    show("command steps (each through the fork server, confined)", chain)
    return rows + chain


if __name__ == "__main__":
    main()
