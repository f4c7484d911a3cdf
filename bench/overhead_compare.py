"""Runner overhead of two source trees in one run: `python -m bench.runner_overhead --compare REF`.

The `src/` folder of git REF is extracted (`git archive`) into a temporary folder; each round runs the same
workload once with that tree and once with this one (the order alternates between rounds), each in a fresh
`python -P -m bench.runner_overhead --worker ...` process whose PYTHONPATH puts the tree's `src` first
(the benchmark's own code, `bench/`, is this checkout's in both). Each round also measures the bare-process
baseline (one `python -c pass` per step, scheduled the same way), so every figure is reported as a ratio
to a baseline measured minutes, not days, apart: machines here are noisy.

REF defaults to the commit before the executor registry (the parent of the commit whose subject starts
with "Executor registry").
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REGISTRY_SUBJECT = "Executor registry"


def default_ref() -> str:
    """The parent of the commit that introduced the executor registry (falls back to HEAD~1)."""
    out = _git("log", "--format=%H", "--grep", f"^{REGISTRY_SUBJECT}", "-n", "1", "HEAD").strip()
    return f"{out}~1" if out else "HEAD~1"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout


def export_src(ref: str, dest: Path) -> Path:
    """`src/` of `ref` extracted under `dest`; returns the folder to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "src"], check=True, capture_output=True
    ).stdout
    tar = dest / "src.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    tar.unlink()
    return dest / "src"


def worker_seconds(src: Path, shape: str, n: int, repeat: int) -> tuple[float, float]:
    """Best-of-`repeat` wall time of one Runner run of the `shape`-`n` plan, in a fresh process that
    imports mlops_nocode from `src`, and the median CPU time of a run (every process of it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(REPO)])
    env["THROTTLE_DISABLE"] = "true"
    cmd = [sys.executable, "-P", "-m", "bench.runner_overhead", "--worker", shape, str(n), str(repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=REPO).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return float(got["seconds"]), float(got["cpu_seconds"])


def compare(ref: str, rounds: int, sizes: tuple[int, ...], repeat: int = 3) -> list[dict[str, Any]]:
    """Interleaved rounds of REF and this tree on chain and fan-out plans; prints and returns a summary."""
    from bench.runner_overhead import bare_processes, plan_for

    workers = os.cpu_count() or 2
    label = _git("rev-parse", "--short", ref).strip()
    head = _git("rev-parse", "--short", "HEAD").strip()
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "--", "src").strip() else ""
    print(f"REF {ref} = {label}; this tree = {head}{dirty}; {rounds} rounds, best of {repeat} per run")
    print(f"load average at start: {_load()}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-bench-ref-") as tmp:
        (Path(tmp) / "before").mkdir()
        after = Path(tmp) / "after" / "src"  # a snapshot: editing the checkout meanwhile changes nothing
        shutil.copytree(REPO / "src", after, ignore=shutil.ignore_patterns("__pycache__", "web"))
        trees = {"before": export_src(ref, Path(tmp) / "before"), "after": after}
        for tree in trees.values():  # as installed: an environment with PYTHONDONTWRITEBYTECODE=1 would
            compileall.compile_dir(tree, quiet=1)  # otherwise compile the fork server's modules every run
        for shape in ("chain", "fanout"):
            for n in sizes:
                plan = plan_for(shape, n)
                w = 1 if shape == "chain" else workers
                per: dict[str, list[tuple[float, float, float]]] = {"before": [], "after": []}
                for r in range(rounds):
                    bare = _best(lambda: bare_processes(plan, w), 2)  # noqa: B023
                    order = ("before", "after") if r % 2 == 0 else ("after", "before")
                    for name in order:
                        secs, cpu = worker_seconds(trees[name], shape, n, repeat)
                        per[name].append((1000 * secs / n, secs / bare, 1000 * cpu / n))
                    print(
                        f"{shape}-{n} round {r + 1}: bare {1000 * bare / n:.2f} ms/step; "
                        + "; ".join(f"{k} {_fmt(per[k][-1])}" for k in per)
                        + f"; load {_load()}"
                    )
                    sys.stdout.flush()
                results.append(_summary(shape, n, per))
    _show(results, label, head + dirty)
    return results


def _fmt(v: tuple[float, float, float]) -> str:
    return f"{v[0]:.2f} ms/step ({v[1]:.2f} of bare, CPU {v[2]:.2f} ms/step)"


def _summary(shape: str, n: int, per: dict[str, list[tuple[float, float, float]]]) -> dict[str, Any]:
    s: dict[str, Any] = {"case": f"{shape}-{n}"}
    for name, vals in per.items():
        s[f"{name}_ms_per_step"] = [round(v[0], 3) for v in vals]
        s[f"{name}_ratio_vs_bare"] = [round(v[1], 3) for v in vals]
        s[f"{name}_cpu_ms_per_step"] = [round(v[2], 3) for v in vals]
        s[f"{name}_median_ms"] = round(statistics.median(v[0] for v in vals), 3)
        s[f"{name}_median_ratio"] = round(statistics.median(v[1] for v in vals), 3)
        s[f"{name}_median_cpu_ms"] = round(statistics.median(v[2] for v in vals), 3)
    s["after_over_before"] = round(s["after_median_ratio"] / s["before_median_ratio"], 3)
    s["cpu_after_over_before"] = round(s["after_median_cpu_ms"] / s["before_median_cpu_ms"], 3)
    return s


def _show(results: list[dict[str, Any]], before: str, after: str) -> None:
    print(f"\n## runner overhead, before ({before}) and after ({after}), medians over rounds")
    print(
        "case | before ms/step | before / bare | after ms/step | after / bare | after / before (ratios) | "
        "CPU ms/step before | after | after / before"
    )
    for s in results:
        print(
            f"{s['case']} | {s['before_median_ms']} | {s['before_median_ratio']} | {s['after_median_ms']} | "
            f"{s['after_median_ratio']} | {s['after_over_before']} | {s['before_median_cpu_ms']} | "
            f"{s['after_median_cpu_ms']} | {s['cpu_after_over_before']}"
        )


def _best(fn: Any, repeat: int) -> float:
    from bench.harness import best_of

    return best_of(fn, repeat)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
