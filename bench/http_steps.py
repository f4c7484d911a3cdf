"""http steps against a server on loopback, next to command steps doing as little in the same run:
a fan-out of N independent steps through a real Runner (`python -m bench.http_steps [--quick]`).

The http step's cost is the Runner's per-step work plus one request from a thread of the Runner; the
command step's is the Runner's work plus a confined child of the fork server. The server answers at
once, so the figures are overhead, not network time."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import best_of, row, show
from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import load_text


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b'{"ok":1}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _plan(section: str, n: int) -> Any:
    playbook = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: one, version: 1.0.0}}
spec:
{section}
  cache: false
  outputs: {{body: {{type: json}}}}
"""
    steps = "\n".join(f"    - {{id: s{i}, uses: playbook/one}}" for i in range(n))
    pipeline = (
        "apiVersion: mlops-nocode/v1\nkind: Pipeline\nmetadata: {name: b, version: 1.0.0}\n"
        f"spec:\n  steps:\n{steps}\n"
    )
    return compile_plan("pipeline/b", Index(load_text(playbook) + load_text(pipeline)))


def _run(plan: Any) -> None:
    result = Runner(plan, home=Path(tempfile.mkdtemp(prefix="bench-http-"))).run()
    assert result.status == "succeeded", result.summary()


def main(quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("THROTTLE_DISABLE", "true")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/x"
    n, repeat = (10, 3) if quick else (20, 5)
    try:
        command = _plan(
            "  runtime: command\n  command: {argv: [sh, -c, 'echo 1 > b.json'], outputs: {body: b.json}}", n
        )
        http = _plan(f'  runtime: http\n  http: {{url: "{url}", output: body}}', n)
        _run(http)  # the first run imports httpx and loads the certificate authorities
        t_command = best_of(lambda: _run(command), repeat)
        t_http = best_of(lambda: _run(http), repeat)
    finally:
        server.shutdown()
        server.server_close()
    rows = [
        row(f"{n} command steps (fan-out)", t_command, n),
        row(f"{n} http steps (fan-out, GET on loopback)", t_http, n, t_command, "command"),
    ]
    show("http steps", rows)
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
