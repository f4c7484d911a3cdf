"""A fake Kubernetes API server on loopback for the k3s container-step path: the documented request and
answer shapes of the endpoints the Runner calls (batch/v1 Jobs create/get/delete, core/v1 pods list by
label selector, a pod's log with follow=true), bearer-token auth, and a scripted "kubelet" that turns a
created Job into a pod whose step container waits, runs and ends as the test says. Created Jobs are
validated against Kubernetes 1.30's schema (kubernetes-validate, strict), as a real API server would.

This is a fake: no container runs. `Script.effect` plays the container's part (e.g. writes its output
file in the folder the Job's volume mounts name)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

K8S_VERSION = "1.30.0"


@dataclass
class Script:
    """What the fake kubelet does with a created Job's pod."""

    exit_code: int | None = 0  # None: runs until deleted
    log: str = ""
    reason: str = ""  # terminated reason (OOMKilled, StartError ...)
    waiting: str = ""  # stays waiting with this reason (ErrImagePull ...)
    effect: Callable[[dict[str, Any]], None] | None = None  # the container's work, given the Job


@dataclass
class FakeKube:
    token: str
    script: Script = field(default_factory=Script)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (job, propagationPolicy)
    refused: list[str] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def create_job(self, ns: str, job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            kubernetes_validate.validate(job, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            self.refused.append(str(e))
            return 422, status(422, "Invalid", f"Job is invalid: {e}")
        name = job["metadata"]["name"]
        if job["metadata"].get("namespace", ns) != ns:
            return 400, status(400, "BadRequest", "the namespace of the object does not match the request")
        with self.cond:
            if name in self.jobs:
                return 409, status(409, "AlreadyExists", f'jobs.batch "{name}" already exists')
            stored = json.loads(json.dumps(job))
            stored["metadata"]["uid"] = f"uid-{len(self.created)}"
            stored["status"] = {}
            self.jobs[name] = stored
            self.created.append(stored)
            pod = f"{name}-x7k2q"
            labels = {**job["spec"]["template"]["metadata"]["labels"], "job-name": name}
            self.pods[pod] = {
                "metadata": {"name": pod, "namespace": ns, "labels": labels},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [_cs({"waiting": {"reason": "ContainerCreating"}})],
                },
            }
        threading.Thread(target=self._kubelet, args=(name, pod), daemon=True).start()
        return 201, stored

    def _kubelet(self, job: str, pod: str) -> None:
        s = self.script
        if s.waiting:
            self._set(
                pod, {"waiting": {"reason": s.waiting, "message": f"{s.waiting} for the image"}}, "Pending"
            )
            return
        if s.effect is not None:
            s.effect(self.jobs[job])
        self.logs[pod] = s.log
        self._set(pod, {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "Running")
        if s.exit_code is None:
            return
        end = {"exitCode": s.exit_code, "reason": s.reason or ("Completed" if s.exit_code == 0 else "Error")}
        self._set(pod, {"terminated": end}, "Succeeded" if s.exit_code == 0 else "Failed")
        with self.cond:
            if job in self.jobs:
                kind = "Complete" if s.exit_code == 0 else "Failed"
                self.jobs[job]["status"] = {"conditions": [{"type": kind, "status": "True"}]}

    def _set(self, pod: str, state: dict[str, Any], phase: str) -> None:
        with self.cond:
            if pod in self.pods:
                self.pods[pod]["status"] = {"phase": phase, "containerStatuses": [_cs(state)]}
            self.cond.notify_all()

    def delete_job(self, name: str, policy: str) -> tuple[int, dict[str, Any]]:
        with self.cond:
            if name not in self.jobs:
                return 404, status(404, "NotFound", f'jobs.batch "{name}" not found')
            del self.jobs[name]
            for pod in [p for p, v in self.pods.items() if v["metadata"]["labels"].get("job-name") == name]:
                del self.pods[pod]
            self.deleted.append((name, policy))
            self.cond.notify_all()
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def follow(self, pod: str) -> Iterator[str]:
        """The pod's log; while its container runs, waits until it ends or the pod goes."""
        sent = False
        while True:
            with self.cond:
                p = self.pods.get(pod)
                state = p["status"]["containerStatuses"][0]["state"] if p else {}
                if not sent and pod in self.logs:
                    text, sent = self.logs[pod], True
                else:
                    text = ""
                if not text and (p is None or "terminated" in state):
                    return
                if not text:
                    self.cond.wait(5)
            if text:
                yield text


def _cs(state: dict[str, Any]) -> dict[str, Any]:
    return {"name": "step", "state": state, "ready": "running" in state, "restartCount": 0}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, method: str) -> None:
            if self.headers.get("Authorization") != f"Bearer {kube.token}":
                return self._send(401, status(401, "Unauthorized", "Unauthorized"))
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            parts = url.path.strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            if parts[:4] == ["apis", "batch", "v1", "namespaces"] and parts[5:6] == ["jobs"]:
                ns, name = parts[4], parts[6] if len(parts) > 6 else ""
                if method == "POST" and not name:
                    return self._send(*kube.create_job(ns, body))
                if method == "GET" and name:
                    with kube.cond:
                        job = kube.jobs.get(name)
                    return self._send(200, job) if job else self._send(404, status(404, "NotFound", name))
                if method == "DELETE" and name:
                    policy = body.get("propagationPolicy") or q.get("propagationPolicy", "")
                    return self._send(*kube.delete_job(name, policy))
            if parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["pods"] and method == "GET":
                if len(parts) == 5:
                    key, _, value = q.get("labelSelector", "").partition("=")
                    with kube.cond:
                        items = [json.loads(json.dumps(p)) for p in kube.pods.values()
                                 if p["metadata"]["labels"].get(key) == value]  # fmt: skip
                    return self._send(200, {"kind": "PodList", "apiVersion": "v1", "items": items})
                if len(parts) == 7 and parts[6] == "log":
                    return self._log(parts[5], q)
            return self._send(404, status(404, "NotFound", f"{method} {url.path}"))

        def _log(self, pod: str, q: dict[str, str]) -> None:
            if q.get("container") != "step" or pod not in kube.pods:
                return self._send(400, status(400, "BadRequest", "container step is not valid"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for text in kube.follow(pod) if q.get("follow") == "true" else [kube.logs.get(pod, "")]:
                data = text.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


@contextmanager
def fake_kube(token: str) -> Iterator[FakeKube]:
    kube = FakeKube(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(kube))
    server.daemon_threads = True
    kube.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kube
    finally:
        server.shutdown()
        server.server_close()


def pod_env(root: Path, sa_dir: Path, kube: FakeKube) -> dict[str, str]:
    """The environment the k3s module gives the Runner's container, pointed at the fake."""
    sa_dir.mkdir(parents=True, exist_ok=True)
    (sa_dir / "token").write_text(kube.token)
    return {
        "K8S_API_URL": kube.url,
        "K8S_SERVICEACCOUNT_DIR": str(sa_dir),
        "K8S_POLL_S": "0.05",
        "MLOPS_K8S_NAMESPACE": "mlops-r1-k3s-0",
        "MLOPS_K8S_POD": "runner-abcde",
        "MLOPS_K8S_POD_UID": "0b7a-runner-uid",
        "MLOPS_K8S_NODE": "node-1",
        "MLOPS_K8S_CLAIM": "work",
        "MLOPS_K8S_SHARED": str(root),
    }
