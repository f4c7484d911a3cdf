"""A scripted OpenAI-compatible backend that stands in for a model in tests (no model weights can be
downloaded here). It is a real HTTP server process on loopback speaking the OpenAI REST shapes that LiteLLM
(SDK and proxy) calls: POST /v1/chat/completions, /v1/completions, /v1/embeddings, GET /v1/models.

Scripting: POST /_script {"chat": [reply, ...], "completion": [...], "embedding": [...]} queues replies,
each used once, in order; a reply is {"content": str} (the answer text), {"json": value} (the answer is
that value as JSON text), {"status": 429|500, "error": str} (an error answer), {"body": {...}} (the raw
body), with an optional "delay" (seconds before answering). With an empty queue a chat answers
"echo: <last user message>" and embeddings are deterministic bag-of-words vectors (64 dimensions), so
retrieval over them is meaningful. GET /_requests lists what was received (bodies and the Authorization
header's presence); POST /_reset clears both. `--api-key K` makes every /v1 call need `Bearer K`.

Run: python -m tests.fakellm --port N [--api-key K]   (or use FakeLLM below / the `fake_llm` fixture)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

DIMS = 64
_WORD = re.compile(r"[a-z0-9]+")


def bow_vector(text: str) -> list[float]:
    """A deterministic unit vector of `text`'s words hashed into DIMS buckets."""
    v = [0.0] * DIMS
    for w in _WORD.findall(text.lower()):
        h = hashlib.sha256(w.encode()).digest()
        v[h[0] % DIMS] += 1.0 if h[1] % 2 else -1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


class _State:
    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.queues: dict[str, list[dict[str, Any]]] = {"chat": [], "completion": [], "embedding": []}
        self.requests: list[dict[str, Any]] = []


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n) or b"{}")

        def _authorised(self) -> bool:
            if state.api_key is None:
                return True
            return self.headers.get("Authorization") == f"Bearer {state.api_key}"

        def do_GET(self) -> None:
            if self.path == "/_requests":
                with state.lock:
                    return self._send(200, state.requests)
            if self.path in ("/v1/models", "/models"):
                return self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            if self.path == "/health":
                return self._send(200, {"status": "ok"})
            self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/_script":
                with state.lock:
                    for kind, replies in body.items():
                        state.queues[kind].extend(replies)
                return self._send(200, {"queued": {k: len(v) for k, v in state.queues.items()}})
            if self.path == "/_reset":
                with state.lock:
                    state.requests.clear()
                    for q in state.queues.values():
                        q.clear()
                return self._send(200, {})
            kind = {
                "/v1/chat/completions": "chat",
                "/chat/completions": "chat",
                "/v1/completions": "completion",
                "/completions": "completion",
                "/v1/embeddings": "embedding",
                "/embeddings": "embedding",
            }.get(self.path)
            if kind is None:
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            with state.lock:
                state.requests.append(
                    {"path": self.path, "body": body, "authorization": "Authorization" in self.headers}
                )
                reply = state.queues[kind].pop(0) if state.queues[kind] else {}
            if not self._authorised():
                return self._send(401, {"error": {"message": "invalid api key", "type": "auth_error"}})
            if reply.get("delay"):
                time.sleep(float(reply["delay"]))
            if "status" in reply and reply["status"] != 200:
                err = {"message": reply.get("error", "scripted error"), "type": "server_error", "code": None}
                return self._send(int(reply["status"]), {"error": err})
            if "body" in reply:
                return self._send(200, reply["body"])
            self._send(200, _answer(kind, body, reply))

    return Handler


def _answer(kind: str, body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    model = body.get("model", "fake-model")
    if kind == "embedding":
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        data = [
            {"object": "embedding", "index": i, "embedding": bow_vector(str(t))} for i, t in enumerate(inputs)
        ]
        n = sum(_tokens(str(t)) for t in inputs)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
    if kind == "chat":
        messages = body.get("messages", [])
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        prompt = " ".join(str(m.get("content", "")) for m in messages)
    else:
        last = prompt = str(body.get("prompt", ""))
    text = json.dumps(reply["json"]) if "json" in reply else str(reply.get("content", f"echo: {last}"))
    usage = {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(text)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    common = {"id": "fake-1", "created": int(time.time()), "model": model, "usage": usage}
    if kind == "completion":
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        return {**common, "object": "text_completion", "choices": [choice]}
    message = {"role": "assistant", "content": text}
    return {
        **common,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeLLM:
    """The scripted backend started as a real process on loopback: `url` is its OpenAI base URL (…/v1)."""

    def __init__(self, api_key: str | None = None) -> None:
        self.port = free_port()
        self.api_key = api_key
        argv = [sys.executable, "-m", "tests.fakellm", "--port", str(self.port)]
        if api_key:
            argv += ["--api-key", api_key]
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("the fake LLM backend did not start") from None
                time.sleep(0.05)

    def script(self, **replies: list[dict[str, Any]]) -> None:
        """Queue replies by kind: chat=[...], completion=[...], embedding=[...]."""
        httpx.post(f"{self.base}/_script", json=replies, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """What the backend received so far."""
        got: list[dict[str, Any]] = httpx.get(f"{self.base}/_requests", timeout=5).json()
        return got

    def reset(self) -> None:
        httpx.post(f"{self.base}/_reset", json={}, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--api-key")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(_State(args.api_key)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
