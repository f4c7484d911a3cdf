"""Gateway under load: `python -m bench.gateway_load [--quick] [--python-client]`.

Starts the real gateway (`mlops up` in a subprocess, temp MLOPS_HOME, SQLite) and, as the same-run
baseline, a bare FastAPI app served by uvicorn the same way (one process, log level warning). Then, with
100 concurrent keep-alive connections, measures p50/p99 latency and throughput of
`GET /pipelines/{id}/status`, `GET /api/v1/runs?limit=20` (with ~200 runs in the database) and the bare
endpoint; deploy throughput (POST /pipelines/deploy, 20 concurrent clients, httpx); and queue-to-start
latency with `mlops up --workers 4` (run created_at to started_at). Only 127.0.0.1 is ever contacted.

The load generator of the read cases is `wrk` (C, one thread; see bench/wrk.py) when it is on PATH: it
needs a small share of one core, so the server is what is measured. Without wrk (or with
`--python-client`) it falls back to httpx.AsyncClient, which on a 2-core machine takes about as much CPU
as the server and so understates every server's throughput and inflates its latency (the ratios to the
bare app stay comparable, the absolute figures do not). Nothing is installed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import wrk
from bench.harness import show

ROOT = Path(__file__).resolve().parent.parent
CASE_DEADLINE = 120.0  # seconds: no load loop runs longer than this, whatever its request count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(argv: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """A server subprocess on 127.0.0.1:port, up once its health URL answers; stopped on exit."""
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{url}/health" if "mlops_nocode" in argv[2] else f"{url}/ping").status_code
                    == 200
                ):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def gateway(tmp: Path, name: str, workers: int) -> Iterator[tuple[str, str]]:
    """`mlops up --port P --workers N` on a fresh MLOPS_HOME (SQLite); yields its URL and admin key."""
    home = tmp / name
    env = {**os.environ, "MLOPS_HOME": str(home), "THROTTLE_DISABLE": "true"}
    for var in ("DATABASE_URL", "SECRET_KEY"):
        env.pop(var, None)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "mlops_nocode.cli.main",
        "up",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with serve(argv, port, env, tmp / f"{name}.log") as url:
        key = str(json.loads((home / "credentials.json").read_text())["key"])
        yield url, key


@contextlib.contextmanager
def bare(tmp: Path) -> Iterator[str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with serve(argv, port, dict(os.environ), tmp / "bare.log") as url:
        yield url


def tiny_pipeline(name: str = "load") -> list[dict[str, Any]]:
    """Inline documents: a command playbook that does nothing, and a one-step pipeline using it."""
    playbook = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Playbook",
        "metadata": {"name": f"{name}-noop", "version": "1.0.0"},
        "spec": {"runtime": "command", "command": {"argv": ["true"]}},
    }
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {"steps": [{"id": "noop", "uses": f"playbook/{name}-noop"}]},
    }
    return [playbook, pipeline]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load(
    url: str, key: str | None, method: str, path: str, body: Any, total: int, concurrency: int
) -> dict[str, Any]:
    """`total` requests from `concurrency` clients sharing one connection pool (stops at CASE_DEADLINE)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors: dict[int | str, int] = {}
    answers: list[Any] = []
    remaining = total
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        if method == "GET":  # warm-up: caches, a connection (not measured)
            for _ in range(min(100, total)):
                await client.request(method, path)
        deadline = time.monotonic() + CASE_DEADLINE

        async def one_client() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                t = time.perf_counter()
                try:
                    r = await client.request(method, path, json=body)
                except httpx.TransportError as e:  # counted, not retried
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - t)
                if r.status_code >= 300:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1
                elif method == "POST":
                    answers.append(r.json())

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "p50_ms": round(1000 * pct(latencies, 0.5), 1),
        "p99_ms": round(1000 * pct(latencies, 0.99), 1),
        "req_per_s": round(len(latencies) / wall, 1),
        "errors": errors or "",
        "_answers": answers,
    }


def load(
    url: str, key: str | None, method: str, path: str, total: int, concurrency: int, body: Any = None
) -> dict[str, Any]:
    return asyncio.run(_load(url, key, method, path, body, total, concurrency))


def queue_to_start(url: str, key: str, runs: int) -> dict[str, Any]:
    """Deploy `runs` tiny runs one every 50 ms (below what 4 workers drain, so no backlog builds), wait for
    them to end, and take started_at - created_at of each."""
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for _ in range(runs):
            r = c.post("/pipelines/deploy", json={"pipeline": tiny_pipeline()})
            r.raise_for_status()
            ids.append(r.json()["pipeline_id"])
            time.sleep(0.05)
        deadline = time.monotonic() + 120
        waits: list[float] = []
        pending = list(ids)
        while pending and time.monotonic() < deadline:
            run = c.get(f"/api/v1/runs/{pending[0]}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                pending.pop(0)
                if run["started_at"] is not None:
                    waits.append(run["started_at"] - run["created_at"])
            else:
                time.sleep(0.1)
        statuses = [c.get(f"/api/v1/runs/{i}").json()["status"] for i in ids]
    return {
        "runs": len(waits),
        "succeeded": statuses.count("succeeded"),
        "p50_ms": round(1000 * pct(waits, 0.5), 1),
        "p99_ms": round(1000 * pct(waits, 0.99), 1),
        "mean_ms": round(1000 * statistics.fmean(waits), 1),
    }


Case = tuple[str, str, str, str | None]  # name, server URL, path, API key


def one_round(case: Case, concurrency: int, seconds: float, use_wrk: bool) -> dict[str, Any]:
    """One measurement of one read case: wrk for `seconds`, or httpx for a request count."""
    _, url, path, key = case
    if use_wrk:
        return wrk.run(url + path, key, concurrency, seconds)
    n = max(50, int(seconds * 100)) if concurrency > 1 else max(20, int(seconds * 30))
    r = load(url, key, "GET", path, n, concurrency)
    r.pop("_answers")
    return r


def interleaved(
    cases: list[Case], concurrency: int, rounds: int, seconds: float, use_wrk: bool
) -> list[dict[str, Any]]:
    """Each case measured in turn, `rounds` times over, so that background load drifting during
    the run hits the baseline (the first case) and the others alike. Per case: the median over the rounds
    of req/s, p50, p99 and of the throughput ratio to the baseline of the same round; the worst p99."""
    for case in cases:  # warm-up: caches, connections, first-use imports (not reported)
        one_round(case, concurrency, 1, use_wrk)
    got: list[list[dict[str, Any]]] = [[] for _ in cases]
    for _ in range(rounds):
        for i, case in enumerate(cases):
            got[i].append(one_round(case, concurrency, seconds, use_wrk))
    rows = []
    for (name, *_), results in zip(cases, got, strict=True):
        ratios = [r["req_per_s"] / b["req_per_s"] for r, b in zip(results, got[0], strict=True)]
        errors: dict[str, int] = {}
        for r in results:
            for k, v in (r["errors"] or {}).items():
                errors[str(k)] = errors.get(str(k), 0) + v
        rows.append(
            {
                "case": name,
                "requests": sum(r["requests"] for r in results),
                "concurrency": concurrency,
                "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 1),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 1),
                "worst_p99_ms": max(r["p99_ms"] for r in results),
                "req_per_s": round(statistics.median(r["req_per_s"] for r in results), 1),
                "errors": errors or "",
                "throughput_vs_bare": round(statistics.median(ratios), 2),
            }
        )
    return rows


def main(quick: bool = False, python_client: bool = False) -> dict[str, Any]:
    deploys = 100 if quick else 200
    qruns = 20 if quick else 50
    rounds, seconds = (2, 3) if quick else (3, 6)
    use_wrk = not python_client and wrk.available() is not None
    if use_wrk:
        generator = "wrk -t1 (C, one thread)"
    else:
        generator = "httpx.AsyncClient (Python, same cores as the server)"
        if not python_client:
            print(f"note: wrk not found, using the Python load generator; get wrk: {wrk.HOW_TO_GET}")
    print(f"load generator for the read cases: {generator}; {rounds} interleaved rounds of {seconds} s")
    status_path, list_path = "/pipelines/{id}/status", "/api/v1/runs?limit=20"
    with tempfile.TemporaryDirectory(prefix="mlops-load-") as d:
        tmp = Path(d)
        # both servers up at once (the one not being measured idles); reads and deploys on a gateway with
        # no worker threads, so the ~200 runs stay queued and no step competes for CPU
        with bare(tmp) as burl, gateway(tmp, "reads", workers=0) as (url, key):
            dep = load(url, key, "POST", "/pipelines/deploy", deploys, 20, {"pipeline": tiny_pipeline()})
            one = status_path.replace("{id}", dep.pop("_answers")[0]["pipeline_id"])
            cases: list[Case] = [
                ("bare FastAPI GET /ping (baseline)", burl, "/ping", None),
                (f"GET {status_path}", url, one, key),
                (f"GET {list_path}", url, list_path, key),
            ]
            rows = interleaved(cases, 100, rounds, seconds, use_wrk)
            alone = interleaved(cases, 1, 1, seconds, use_wrk)
        with gateway(tmp, "workers", workers=4) as (url, key):
            q2s = queue_to_start(url, key, qruns)
    show(f"gateway under load (SQLite, one uvicorn process, 100 connections; {generator})", rows)
    show("the same, one connection (service time without queueing)", alone)
    dep_row = {"case": "POST /pipelines/deploy (tiny inline pipeline; httpx)", **dep}
    show("deploy throughput (20 concurrent clients)", [dep_row])
    show("queue-to-start latency (mlops up --workers 4, one deploy every 50 ms)", [q2s])
    return {
        "generator": generator,
        "reads": rows,
        "one_client": alone,
        "deploy": dep_row,
        "queue_to_start": q2s,
    }


if __name__ == "__main__":
    main("--quick" in sys.argv, "--python-client" in sys.argv)
