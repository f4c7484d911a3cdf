"""The run page with a real 300-step run, measured in the browser: `python -m bench.ui_runs`.

Starts the real gateway (`mlops up`, temp MLOPS_HOME, SQLite), runs an inline pipeline of 300 tiny command
steps (`true N`, 10 parallel chains of 30 joined by `depends_on`) and, as the same-run baseline, one of 10
steps; then opens each finished run's page in Debian's chromium (headless, Playwright) and measures:

- graph: navigation to the DAG drawn (the run and graph requests, the dagre layout of every step in its
  worker, xyflow's first render; above 60 steps it opens on the first steps at a readable zoom and only
  the nodes in view are in the page);
- status: the full status update of every node: the time the page spends on the batches of replayed
  events until every step shows `succeeded` in the page (the step list has every step, the graph the
  nodes in view; each batch is applied to the store and rendered once; its
  `run-batch` performance measure ends at the next animation frame, so the browser's style, layout and
  paint are included);
- stream: the same from the start of the first batch to the end of the last (the event stream's delivery
  between batches included);
- worst batch: the longest single batch.

Each row is the load (of REPEAT) with the fastest status update (`--shots=DIR` saves a screenshot of
each page); ratios are against the 10-step baseline measured in the same run.
Goal (docs/PERFORMANCE.md): the status update of every node of 300 steps < 150 ms on the 2-core machine.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from bench.gateway_load import gateway
from bench.harness import show

BIG = 300
BASE = 10
CHAINS = 10
REPEAT = 3
SHOTS = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--shots=")), None)  # a folder
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
API = "mlops-nocode/v1"


def pipeline(name: str, n: int) -> list[dict[str, Any]]:
    """Inline documents: a command playbook that does nothing, and `n` steps of it in CHAINS chains."""
    tick = {
        "apiVersion": API,
        "kind": "Playbook",
        "metadata": {"name": "tick", "version": "1.0.0"},
        "spec": {
            "runtime": "command",
            "command": {"argv": ["true", "${{ params.n }}"]},
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
    }
    steps: list[dict[str, Any]] = []
    for i in range(n):
        # each step its own parameter, so that none is a cache hit of another: every one runs
        step: dict[str, Any] = {"id": f"s{i:03d}", "uses": "playbook/tick", "with": {"n": i}}
        if i >= CHAINS:
            step["depends_on"] = [f"s{i - CHAINS:03d}"]
        steps.append(step)
    flow = {"apiVersion": API, "kind": "Pipeline", "metadata": {"name": name, "version": "1.0.0"}}
    return [tick, flow | {"spec": {"steps": steps}}]


def run_to_end(api: httpx.Client, docs: list[dict[str, Any]], timeout: float = 900.0) -> tuple[str, float]:
    """Launch and wait until the run succeeded; its id and how long it ran (gateway's timestamps)."""
    r = api.post("/api/v1/runs", json={"pipeline": docs, "target": "local"})
    r.raise_for_status()
    run_id = str(r.json()["id"])
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {run['status']} after {timeout}s")
        time.sleep(0.5)
    if run["status"] != "succeeded":
        raise RuntimeError(f"run {run_id} {run['status']}: {run['details']}")
    return run_id, float(run["finished_at"] - run["started_at"])


MEASURE = """n => {
  const batches = performance.getEntriesByName('run-batch');
  const nav = performance.getEntriesByType('navigation')[0];
  return {batches: batches.map(b => [b.startTime, b.duration, b.detail]), origin: nav ? nav.startTime : 0};
}"""


def measure(page: Page, url: str, n: int) -> dict[str, float]:
    """One load of the run page: graph in the page, full status update, worst batch (ms)."""
    page.goto(url)
    # functions, not expression strings: the page's CSP forbids eval
    page.wait_for_function("() => document.querySelector('[data-node]') !== null", timeout=60_000)
    graph = float(page.evaluate("performance.now()"))
    # every step's status in the page: the step list has them all (a big graph has its nodes in view)
    done = "n => document.querySelectorAll('[data-step][data-status=succeeded]').length === n"
    page.wait_for_function(done, arg=n, timeout=60_000)
    page.wait_for_function(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
    )
    found = page.evaluate(MEASURE, n)
    batches = found["batches"]
    if not batches:
        raise RuntimeError("no run-batch measure: is the UI built from this tree?")
    end = max(start + duration for start, duration, _ in batches)
    return {
        "graph_ms": round(graph, 1),
        "status_ms": round(sum(d for _, d, _ in batches), 1),
        "stream_ms": round(end - batches[0][0], 1),
        "worst_batch_ms": round(max(d for _, d, _ in batches), 1),
        "batches": len(batches),
        "events": sum(int(size) for _, _, size in batches),
    }


def main() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp, gateway(Path(tmp), "ui", 1) as (url, key):
        log = (Path(tmp) / "ui.log").read_text()
        login = re.search(r"login: (http://\S+/\?token=\S+)", log)
        if not login:
            raise RuntimeError(f"no login URL in the gateway's log:\n{log}")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            runs = {n: run_to_end(api, pipeline(f"ui-bench-{n}", n)) for n in (BASE, BIG)}
        rows: list[dict[str, Any]] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto(login.group(1))
            page.wait_for_url(url + "/")
            results: dict[int, dict[str, float]] = {}
            for n, (run_id, ran) in runs.items():
                loads = [measure(page, f"{url}/runs/{run_id}", n) for _ in range(REPEAT)]
                best = min(loads, key=lambda m: m["status_ms"])  # one load's numbers, together
                results[n] = best
                if SHOTS:
                    page.screenshot(path=Path(SHOTS) / f"run-{n}-steps.png", full_page=True)
                rows.append({"steps": n, "run_seconds": round(ran, 2), **best})
            browser.close()
        base = results[BASE]
        for r in rows:
            for k in ("graph_ms", "status_ms", "stream_ms", "worst_batch_ms"):
                r[f"{k.removesuffix('_ms')}_ratio"] = round(r[k] / base[k], 2) if base[k] else None
        show(f"run page, {BIG} steps vs {BASE} (best of {REPEAT} loads, ms)", rows)
        return rows


if __name__ == "__main__":
    out = main()
    if "--json" in sys.argv:
        print(json.dumps(out, indent=2))
