"""A Prometheus that misbehaves (hangs, answers HTML with a 500, an error, a body of the wrong shape): the
client says so without the server's address, and the gateway answers the charts from its own history with
a note, never a 500. The misbehaving server is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops_nocode.monitoring.promquery import PromClient, PromUnavailable
from tests.api.conftest import Server


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


MATRIX = {"metric": {"status": "200"}, "values": [[1, "NaN"], [2, "+Inf"], [3, "1.5"], [4, "x"]]}
MODES: dict[str, tuple[int, str, bytes]] = {
    "html500": (500, "text/html", b"<html><body>Internal Server Error</body></html>"),
    "error": (
        400,
        "application/json",
        _json({"status": "error", "errorType": "bad_data", "error": "parse error"}),
    ),
    "vector": (
        200,
        "application/json",
        _json({"status": "success", "data": {"resultType": "vector", "result": []}}),
    ),
    "list": (200, "application/json", b"[1, 2, 3]"),
    "ok": (
        200,
        "application/json",
        _json({"status": "success", "data": {"resultType": "matrix", "result": [MATRIX]}}),
    ),
}


class Misbehaving:
    """A loopback HTTP server answering every POST per `mode` ("hang": never, until stopped)."""

    def __init__(self) -> None:
        self.mode = "hang"
        self.release = threading.Event()
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.requests.append(self.path)
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if owner.mode == "hang":
                    owner.release.wait(60)
                    return
                code, kind, body = MODES[owner.mode]
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def prom() -> Iterator[Misbehaving]:
    p = Misbehaving()
    yield p
    p.stop()


@pytest.mark.parametrize("mode", ["hang", "html500", "error", "vector", "list"])
def test_the_client_says_what_went_wrong_without_the_address(prom: Misbehaving, mode: str) -> None:
    prom.mode = mode
    with pytest.raises(PromUnavailable) as caught:
        PromClient(prom.url, 0.5).query_range("up", 0, 10, 1)
    assert str(prom.http.server_address[1]) not in str(caught.value) and "127.0.0.1" not in str(caught.value)
    if mode == "error":
        assert "parse error" in str(caught.value)


def test_values_that_are_not_finite_numbers_are_gaps(prom: Misbehaving) -> None:
    prom.mode = "ok"
    (series,) = PromClient(prom.url + "/", 2).query_range("up", 1, 4, 1)
    assert series.labels == {"status": "200"} and series.points == [(1, None), (2, None), (3, 1.5), (4, None)]
    assert prom.requests[-1] == "/api/v1/query_range"


def test_the_gateway_answers_from_its_history_when_prometheus_hangs(
    prom: Misbehaving, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prom.mode = "hang"
    server = Server(
        tmp_path_factory.mktemp("promhang") / "home", PROMETHEUS_URL=prom.url, PROMETHEUS_TIMEOUT="1"
    )
    server.start()
    try:
        with server.client(server.admin_key) as admin:
            for mode in ("hang", "html500", "vector"):
                prom.mode = mode
                r = admin.get("/api/v1/monitoring/charts", params={"panel": "runs", "range": 600})
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["source"] == "gateway" and "PROMETHEUS_URL" in body["note"]
                assert prom.url not in r.text
                assert all("PROMETHEUS_URL" in (c["note"] or "") for c in body["charts"])
    finally:
        server.stop()
