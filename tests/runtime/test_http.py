"""http steps through a real Runner against a real HTTP server on loopback: bodies as json/text/file
outputs, retries (5xx, 429 with Retry-After), unexpected statuses, timeouts, redirects, the host policy,
secrets redacted, hostile values and cancellation mid-request."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.limits import OutputLimits
from mlops_nocode.runtime.runner import Runner, RunResult
from mlops_nocode.spec import load_text
from tests.runtime.http_server import Answer, Server, serve

SECRET = "s3cr3t-token-value-42"


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve()


def playbook(section: str, outputs: str = "{body: {type: json}}", params: str = "{}", extra: str = "") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: call, version: 1.0.0}}
spec:
  runtime: http
  cache: false
  http:
{textwrap.indent(textwrap.dedent(section).strip(), "    ")}
  outputs: {outputs}
  parameters: {{type: object, properties: {params}}}
{textwrap.indent(textwrap.dedent(extra).strip(), "  ")}
"""


def run(
    pb: str, with_: dict[str, Any] | None = None, home: Path | None = None, **kw: Any
) -> tuple[RunResult, list[Event]]:
    spec = f"""
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: call, uses: playbook/call, with: {json.dumps(with_ or {})}}}
"""
    plan = compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec)))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, home=home, **kw).run()
    return result, events


def log_of(events: list[Event]) -> str:
    return "\n".join(str(e.data.get("line")) for e in events if e.type == "log")


def test_json_body_becomes_the_output_with_templated_request(server: Server, tmp_path: Path) -> None:
    server.json("/items/a%2Fb%3Fx%3D1", {"id": 7, "ok": True})
    pb = playbook(
        f"""
        method: POST
        url: "{server.url}/items/${{{{ params.name }}}}"
        headers: {{X-Api-Key: "${{{{ secrets.API_KEY }}}}", X-Count: "${{{{ params.n }}}}"}}
        query: {{q: "${{{{ params.name }}}}"}}
        json: {{name: "${{{{ params.name }}}}", n: "${{{{ params.n }}}}", note: "n=${{{{ params.n }}}}"}}
        output: body
        """,
        params="{name: {type: string}, n: {type: integer}}",
        extra="secrets: [API_KEY]",
    )
    r, events = run(pb, {"name": "a/b?x=1", "n": 3}, home=tmp_path, environ={"API_KEY": SECRET})
    assert r.status == "succeeded", r.summary()
    assert r.steps["call"].outputs["body"]["value"] == {"id": 7, "ok": True}
    seen = server.seen[-1]
    assert seen.method == "POST"
    assert seen.path == "/items/a%2Fb%3Fx%3D1?q=a%2Fb%3Fx%3D1"  # one path segment, one query value
    assert seen.headers["X-Api-Key"] == SECRET and seen.headers["X-Count"] == "3"
    assert json.loads(seen.body) == {"name": "a/b?x=1", "n": 3, "note": "n=3"}  # typed when whole
    everything = json.dumps([e.data for e in events]) + _files_text(tmp_path)
    assert SECRET not in everything  # never in a log line, an event or a file of the run


def _files_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_text_output_and_status_output(server: Server) -> None:
    server.on("/t", Answer(201, "héllo".encode(), {"Content-Type": "text/plain; charset=utf-8"}))
    pb = playbook(
        f"""
        method: PUT
        url: {server.url}/t
        body: "plain text"
        output: text
        status_output: code
        """,
        outputs="{text: {type: text}, code: {type: json}}",
    )
    r, _ = run(pb)
    assert r.status == "succeeded", r.summary()
    assert r.steps["call"].outputs["text"]["value"] == "héllo"
    assert r.steps["call"].outputs["code"]["value"] == 201
    assert server.seen[-1].body == b"plain text"


def test_binary_body_becomes_a_file_output(server: Server) -> None:
    blob = bytes(range(256)) * 1000
    server.on("/blob", Answer(200, blob, {"Content-Type": "application/octet-stream"}))
    pb = playbook(f"url: {server.url}/blob\noutput: model", outputs="{model: {type: model}}")
    r, _ = run(pb)
    assert r.status == "succeeded", r.summary()
    assert Path(r.steps["call"].outputs["model"]["path"]).read_bytes() == blob


def test_body_file_uploads_an_input_file(server: Server, tmp_path: Path) -> None:
    server.json("/up", {"stored": True})
    source = tmp_path / "data.bin"
    source.write_bytes(b"\x00\x01payload")
    pbs = f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: make, version: 1.0.0}}
spec:
  runtime: command
  command: {{argv: [cp, {source}, "${{{{ outputs.f }}}}"], outputs: {{f: data.bin}}}}
  outputs: {{f: {{type: file}}}}
  cache: false
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: call, version: 1.0.0}}
spec:
  runtime: http
  cache: false
  inputs: {{f: {{type: file}}}}
  outputs: {{body: {{type: json}}}}
  http: {{method: POST, url: "{server.url}/up", body_file: "${{{{ inputs.f }}}}", output: body}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: t, version: 1.0.0}}
spec:
  steps:
    - {{id: make, uses: playbook/make}}
    - {{id: call, uses: playbook/call, inputs: {{f: make.f}}}}
"""
    plan = compile_plan("pipeline/t", Index(load_text(pbs)))
    r = Runner(plan).run()
    assert r.status == "succeeded", r.summary()
    assert server.seen[-1].body == b"\x00\x01payload"
    assert server.seen[-1].headers["Content-Type"] == "application/octet-stream"


def test_5xx_then_success_is_retried_with_backoff(server: Server) -> None:
    server.on("/flaky", Answer(503, b"busy"), Answer(500, b"oops"))
    server.script["/flaky"].append(Answer(200, b'{"n": 1}'))
    pb = playbook(f"url: {server.url}/flaky\noutput: body\nbackoff: 0.01\nretries: 3")
    r, events = run(pb)
    assert r.status == "succeeded", r.summary()
    assert len(server.seen) == 3
    assert "(try 3/4)" in log_of(events)


def test_429_waits_as_retry_after_says(server: Server) -> None:
    server.on("/limited", Answer(429, b"slow down", {"Retry-After": "1"}), Answer(200, b"[1]"))
    pb = playbook(f"url: {server.url}/limited\noutput: body\nbackoff: 0")
    r, events = run(pb)
    assert r.status == "succeeded", r.summary()
    assert "trying again in 1 s (Retry-After)" in log_of(events)


def test_retry_after_beyond_the_cap_fails_at_once(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_STEP_RETRY_WAIT_MAX", "5")
    server.on("/limited", Answer(429, b"", {"Retry-After": "3600"}))
    r, _ = run(playbook(f"url: {server.url}/limited\noutput: body"))
    assert r.status == "failed"
    assert "asks to wait 3600 s" in (r.steps["call"].error or "")
    assert "HTTP_STEP_RETRY_WAIT_MAX (5 s)" in (r.steps["call"].error or "")
    assert len(server.seen) == 1


def test_unexpected_status_fails_with_it_and_logs_the_answer(server: Server) -> None:
    server.on("/missing", Answer(404, b"no such item"))
    r, events = run(playbook(f"url: {server.url}/missing?token=abc\noutput: body\nretries: 2"))
    assert r.status == "failed"
    error = r.steps["call"].error or ""
    assert error.startswith(f"GET {server.url}/missing answered 404 Not Found (expected 200-299")
    assert "token=abc" not in error  # the query is never quoted in a message
    assert "no such item" in log_of(events)
    assert len(server.seen) == 1  # a 404 is not worth another try


def test_expected_statuses_accept_a_404(server: Server) -> None:
    server.on("/missing", Answer(404, b"{}"))
    pb = playbook(f"url: {server.url}/missing\nexpect: [200, 404]\nstatus_output: code", outputs="{code: {}}")
    r, _ = run(pb)
    assert r.status == "succeeded", r.summary()
    assert r.steps["call"].outputs["code"]["value"] == 404


def test_timeout_fails_after_the_tries(server: Server) -> None:
    hold = threading.Event()
    server.on("/slow", Answer(200, b"{}", hold=hold))
    try:
        r, _ = run(playbook(f"url: {server.url}/slow\noutput: body\ntimeout: 0.3\nretries: 1\nbackoff: 0"))
    finally:
        hold.set()
    assert r.status == "failed"
    assert r.steps["call"].error == f"GET {server.url}/slow timed out (timed out)"
    assert _eventually(lambda: len(server.seen) == 2), server.seen  # a GET is tried again after a timeout


def _eventually(cond: Callable[[], bool], deadline: float = 30.0) -> bool:
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_redirects_are_refused_by_default_and_followed_when_asked(server: Server) -> None:
    server.on("/old", Answer(302, b"", {"Location": "/new?k=v"}))
    server.json("/new", {"moved": True})
    r, _ = run(playbook(f"url: {server.url}/old\noutput: body"))
    assert r.status == "failed"
    error = r.steps["call"].error or ""
    assert f"answered 302 Found (a redirect to {server.url}/new): redirects are not followed" in error
    r, _ = run(playbook(f"url: {server.url}/old\noutput: body\nfollow_redirects: true"))
    assert r.status == "succeeded", r.summary()
    assert r.steps["call"].outputs["body"]["value"] == {"moved": True}


def test_redirect_to_metadata_address_is_refused_at_the_hop(server: Server) -> None:
    server.on("/evil", Answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    r, _ = run(playbook(f"url: {server.url}/evil\noutput: body\nfollow_redirects: true"))
    assert r.status == "failed"
    assert "169.254.169.254 is link-local" in (r.steps["call"].error or "")


def test_metadata_address_from_a_value_is_refused() -> None:
    pb = playbook('url: "${{ params.base }}/latest"\noutput: body', params="{base: {type: string}}")
    r, _ = run(pb, {"base": "http://169.254.169.254"})
    assert r.status == "failed"
    error = r.steps["call"].error or ""
    assert "169.254.169.254 is link-local" in error and "http step requests are never sent there" in error


def test_private_address_refused_when_the_platform_listens_beyond_loopback(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    r, _ = run(playbook(f"url: {server.url}/x\noutput: body"))
    assert r.status == "failed"
    assert "WEBHOOK_ALLOWED_HOSTS" in (r.steps["call"].error or "")
    assert server.seen == []
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    server.json("/x", [])
    r, _ = run(playbook(f"url: {server.url}/x\noutput: body"))
    assert r.status == "succeeded", r.summary()


def test_a_crlf_value_cannot_inject_a_header(server: Server) -> None:
    server.json("/x", {})
    pb = playbook(
        f'url: {server.url}/x\nheaders: {{X-Name: "${{{{ params.v }}}}"}}\noutput: body',
        params="{v: {type: string}}",
    )
    r, _ = run(pb, {"v": "a\r\nX-Injected: 1"})
    assert r.status == "failed"
    assert "http.headers.X-Name: its value holds a line break" in (r.steps["call"].error or "")
    assert server.seen == []


def test_a_secret_url_echoed_by_the_answer_is_redacted(server: Server, tmp_path: Path) -> None:
    hook = f"{server.url}/hooks/{SECRET}?sig=abcdef"
    server.on(f"/hooks/{SECRET}", Answer(500, f"bad hook {hook}".encode()))
    pb = playbook(
        'method: POST\nurl: "${{ secrets.HOOK }}"\njson: {text: hi}\nretries: 0\noutput: body',
        extra="secrets: [HOOK]",
    )
    r, events = run(pb, home=tmp_path, environ={"HOOK": hook})
    assert r.status == "failed"
    assert r.steps["call"].error == (
        "POST *** answered 500 Internal Server Error "
        "(expected 200-299; the start of the answer is in the log)"
    )
    everything = json.dumps([e.data for e in events]) + _files_text(tmp_path) + json.dumps(r.summary())
    assert SECRET not in everything  # not even the part of the secret URL before its query
    assert "bad hook ***" in log_of(events)


def test_cancel_interrupts_a_pending_request(server: Server, tmp_path: Path) -> None:
    hold = threading.Event()
    server.on("/hang", Answer(200, b"{}", hold=hold))
    plan_text = playbook(f"url: {server.url}/hang\noutput: body\ntimeout: 600\nretries: 0")
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps: [{id: call, uses: playbook/call}]
"""
    runner = Runner(compile_plan("pipeline/t", Index(load_text(plan_text) + load_text(spec))), home=tmp_path)
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    try:
        assert server.entered.wait(30), "the request never reached the server"
        runner.cancel()
        t.join(30)
    finally:
        hold.set()
    assert result and result[0].status == "cancelled"
    assert not [x for x in threading.enumerate() if x.name.startswith("step call#")]


def test_step_timeout_interrupts_the_request(server: Server) -> None:
    hold = threading.Event()
    server.on("/hang", Answer(200, b"{}", hold=hold))
    pb = playbook(f"url: {server.url}/hang\noutput: body\ntimeout: 600\nretries: 0", extra="timeout: 1s")
    try:
        r, _ = run(pb)
    finally:
        hold.set()
    assert r.status == "failed"
    assert "timed out after 1s" in (r.steps["call"].error or "")


def test_hostile_values_stay_inside_their_place(server: Server) -> None:
    server.json("/items/..%2Fadmin%40evil.example%23x", {"ok": 1})
    pb = playbook(
        f"""
        method: POST
        url: "{server.url}/items/${{{{ params.p }}}}"
        query: {{q: "${{{{ params.p }}}}"}}
        json: {{name: "x${{{{ params.j }}}}"}}
        output: body
        """,
        params="{p: {type: string}, j: {type: string}}",
    )
    r, _ = run(pb, {"p": "../admin@evil.example#x", "j": '", "admin": true, "x": "'})
    assert r.status == "succeeded", r.summary()
    seen = server.seen[-1]
    assert seen.path == "/items/..%2Fadmin%40evil.example%23x?q=..%2Fadmin%40evil.example%23x"
    assert json.loads(seen.body) == {"name": 'x", "admin": true, "x": "'}  # one string, no new key


def test_a_cross_origin_redirect_drops_the_steps_headers(server: Server) -> None:
    port = server.httpd.server_address[1]
    server.on("/start", Answer(307, b"", {"Location": f"http://localhost:{port}/landed"}))
    server.json("/landed", {"here": True})
    pb = playbook(
        f'url: {server.url}/start\nheaders: {{X-Api-Key: "${{{{ secrets.K }}}}"}}\nfollow_redirects: true\n'
        "output: body",
        extra="secrets: [K]",
    )
    r, _ = run(pb, environ={"K": SECRET})
    assert r.status == "succeeded", r.summary()
    first, landed = server.seen[-2], server.seen[-1]
    assert first.headers["X-Api-Key"] == SECRET
    assert landed.path == "/landed" and "X-Api-Key" not in landed.headers


def test_connection_refused_is_retried_then_named() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r, events = run(
        playbook(f"method: POST\nurl: http://127.0.0.1:{port}/x\nretries: 2\nbackoff: 0\noutput: body")
    )
    assert r.status == "failed"
    error = r.steps["call"].error or ""
    assert error.startswith(f"POST http://127.0.0.1:{port}/x failed (") and "Connection refused" in error
    assert "(try 3/3)" in log_of(events)  # a connection never made is tried again, even for a POST


def test_bodies_beyond_the_limits_fail_with_the_setting_to_change(server: Server) -> None:
    server.on("/big", Answer(200, b"[" + b"1," * 5000 + b"1]"))
    limits = OutputLimits(step_values_max_bytes=1024, step_output_max_bytes=2048)
    r, _ = run(playbook(f"url: {server.url}/big\noutput: body"), limits=limits)
    assert r.status == "failed"
    assert "larger than STEP_VALUES_MAX_BYTES (1024 bytes): declare the output as a file" in (
        r.steps["call"].error or ""
    )
    r, _ = run(playbook(f"url: {server.url}/big\noutput: f", outputs="{f: {type: file}}"), limits=limits)
    assert r.status == "failed"
    assert "larger than STEP_OUTPUT_MAX_BYTES (2048 bytes)" in (r.steps["call"].error or "")


def test_a_json_output_refuses_a_body_that_is_not_json(server: Server) -> None:
    server.on("/html", Answer(200, b"<html></html>", {"Content-Type": "text/html"}))
    r, _ = run(playbook(f"url: {server.url}/html\noutput: body"))
    assert r.status == "failed"
    assert "the response body is not JSON (Content-Type: text/html): declare the output as text" in (
        r.steps["call"].error or ""
    )


def test_cancel_interrupts_the_wait_before_a_retry(server: Server, tmp_path: Path) -> None:
    server.on("/busy", Answer(503, b"", {"Retry-After": "200"}))
    spec = """
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: t, version: 1.0.0}
spec:
  steps: [{id: call, uses: playbook/call}]
"""
    pb = playbook(f"url: {server.url}/busy\noutput: body")
    events: list[Event] = []
    runner = Runner(
        compile_plan("pipeline/t", Index(load_text(pb) + load_text(spec))), home=tmp_path, sink=events.append
    )
    result: list[RunResult] = []
    t = threading.Thread(target=lambda: result.append(runner.run()))
    t.start()
    assert _eventually(lambda: "trying again in 200 s (Retry-After)" in log_of(list(events))), log_of(events)
    runner.cancel()
    t.join(30)
    assert result and result[0].status == "cancelled"
    assert len(server.seen) == 1
