"""Drive `wrk` (the C HTTP benchmarking tool) from the benchmarks, and read its results back as numbers.

wrk runs one thread holding many keep-alive connections, so on a small machine the load generator takes
a small share of the CPU instead of competing with the server it measures (a Python generator needs about
as much CPU per request as the server does). Nothing here installs wrk: `available()` says whether it is
on PATH and `HOW_TO_GET` says how to get it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

HOW_TO_GET = "apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)"

# `done` runs once at the end: print the summary as one JSON line wrk's own report does not disturb.
# Latencies are in microseconds; errors.status counts answers outside 2xx/3xx.
_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def available() -> str | None:
    """The path of wrk, or None."""
    return shutil.which("wrk")


def run(
    url: str,
    key: str | None,
    connections: int,
    seconds: float,
    *,
    method: str = "GET",
    body: Any = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """`wrk -t1 -c<connections> -d<seconds>s` on one URL; p50/p99 latency (ms), req/s and errors."""
    exe = available()
    if exe is None:
        raise RuntimeError(f"wrk is not installed: {HOW_TO_GET}")
    script = _REPORT
    if method != "GET" or body is not None:
        script += f"wrk.method = {json.dumps(method)}\n"
        if body is not None:
            script += f"wrk.body = {json.dumps(json.dumps(body))}\n"
            script += 'wrk.headers["Content-Type"] = "application/json"\n'
    with tempfile.TemporaryDirectory(prefix="wrk-") as d:
        lua = Path(d) / "report.lua"
        lua.write_text(script)
        argv = [exe, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        argv += [f"--timeout={max(1, round(timeout))}s", "-s", str(lua)]
        if key:
            argv += ["-H", f"Authorization: Bearer {key}"]
        argv.append(url)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    ok = raw["requests"] - raw["status"]
    return {
        "requests": raw["requests"],
        "concurrency": connections,
        "p50_ms": round(raw["p50_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1),
        "max_ms": round(raw["max_us"] / 1000, 1),
        "req_per_s": round(ok / (raw["duration_us"] / 1e6), 1),
        "errors": errors or "",
    }
