"""A Windmill API stand-in on loopback, reproducing the request and response shapes of Windmill's OpenAPI
(backend/windmill-api/openapi.yaml) for the endpoints `mlops windmill push` uses: exists -> JSON
boolean, create -> 201 text/plain, update -> 200 text/plain, scripts/get/p -> a Script with its hash; bearer
token checked; bodies checked for the fields the spec marks required. No Windmill server installs here."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REQUIRED = {
    "folders/create": {"name"},
    "variables/create": {"path", "value", "is_secret", "description"},
    "scripts/create": {"path", "summary", "description", "content", "language"},
    "flows/create": {"path", "summary", "value"},
    "flows/update": {"path", "summary", "value"},
    "apps/create": {"path", "value", "summary", "policy"},
}


class FakeWindmill:
    """State per kind and path, plus every request seen (method, path, body)."""

    def __init__(self, token: str, workspace: str = "demo") -> None:
        self.token = token
        self.workspace = workspace
        self.items: dict[str, dict[str, Any]] = {
            k: {} for k in ("folders", "variables", "scripts", "flows", "apps")
        }
        self.requests: list[tuple[str, str, Any]] = []
        self.creates: dict[str, int] = {}
        self.refuse: str | None = None  # a route answered 400 echoing the request body (a careless server)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, text: bool = False) -> None:
                data = (body if text else json.dumps(body)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeWindmill:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h: Any, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        self.requests.append((method, h.path, body))
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return h._send(401, "Unauthorized", text=True)
        m = re.fullmatch(
            rf"/api/w/{re.escape(self.workspace)}/(\w+)/(exists|create|update|get)(?:/p)?/?(.*)", h.path
        )
        if not m:
            return h._send(404, "not found", text=True)
        kind, op, path = m.groups()
        if self.refuse and self.refuse in h.path:
            return h._send(400, f"refused: {json.dumps(body)}", text=True)
        store = self.items[kind]
        if method == "GET" and op == "exists":
            return h._send(200, path in store)
        if method == "GET" and op == "get":
            return h._send(200, store[path]) if path in store else h._send(404, "not found", text=True)
        missing = REQUIRED.get(f"{kind}/{op}", set()) - set(body or {})
        if missing:
            return h._send(400, f"missing {sorted(missing)}", text=True)
        if op == "create":
            key = body.get("path") or body["name"]
            if kind == "scripts":
                prev = store.get(key)
                if prev is not None and body.get("parent_hash") != prev["hash"]:
                    return h._send(
                        400, "a script with this path exists: give its hash as parent_hash", text=True
                    )
                body = {**body, "hash": hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]}
            elif key in store:
                return h._send(400, f"{key} already exists", text=True)
            self.creates[key] = self.creates.get(key, 0) + 1
            store[key] = body
            return h._send(201, body.get("hash", key), text=True)
        if path not in store:
            return h._send(404, "not found", text=True)
        store[path] = {**store[path], **body}
        return h._send(200, path, text=True)
