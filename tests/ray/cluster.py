"""A real Ray cluster on loopback for tests: a head node, more nodes, stopped with nothing left behind.

Every node is a `ray start --block` process in its own session, on 127.0.0.1 only, with free ports and a
temporary folder of its own (other test processes run their own clusters at the same time: `ray stop`
would kill them all, so it is never used). Stopping kills each node's process group, then any process
whose command line names this cluster's temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
QUICK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_period_ms": "500",  # a lost node is known in ~2 s, not ~30 s
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
"""Without it Ray replaces --node-ip-address=127.0.0.1 by the machine's address and its servers listen on
every interface; with it a node keeps 127.0.0.1 and its servers listen on loopback only."""
_JOIN = (
    "import sys; import ray._private.ray_constants as c; from ray._private import services as s; "
    "c.ENABLE_RAY_CLUSTER = True; s.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)
"""`ray start --address` refuses to join with LOOPBACK_ENV set: this runs it with the check passed and
127.0.0.1 kept as given (the node's own processes still get LOOPBACK_ENV)."""


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _worker_range() -> tuple[int, int]:
    """A block of 40 free ports for a node's workers."""
    for _ in range(50):
        base = free_ports(1)[0]
        if base + 40 > 65000:
            continue
        try:
            socks = []
            for p in range(base, base + 40):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + 39
    raise RuntimeError("no block of free ports")


class Cluster:
    """A head node (2 CPUs) and the nodes added to it; `address` is what RAY_ADDRESS takes."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: socket paths <= 107 bytes
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self._specs: dict[str, tuple[list[str], int, dict[str, float]]] = {}
        self.address = ""
        self.ids: dict[str, str] = {}
        """Custom resource -> the id of the node that holds it (node_ids)."""

    def _start(self, name: str, extra: list[str], cpus: int, resources: dict[str, float]) -> None:
        self._specs[name] = (extra, cpus, resources)
        p = free_ports(6)
        low, high = _worker_range()
        launcher = [RAY] if "--head" in extra else [sys.executable, "-c", _JOIN]
        argv = [
            *launcher, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
            "--object-store-memory=100000000", f"--temp-dir={self.tmp}", "--disable-usage-stats",
            f"--node-manager-port={p[0]}", f"--object-manager-port={p[1]}",
            f"--min-worker-port={low}", f"--max-worker-port={high}",
            f"--dashboard-agent-listen-port={p[2]}", f"--dashboard-agent-grpc-port={p[3]}",
            f"--runtime-env-agent-port={p[4]}", f"--metrics-export-port={p[5]}",
            f"--resources={json.dumps(resources)}", *extra,
        ]  # fmt: skip
        log = open(self.tmp / f"{name}.out", "wb")  # noqa: SIM115 - the node's own output, kept for failures
        env = {**os.environ, **QUICK_ENV, **LOOPBACK_ENV}
        env.pop("RAY_ADDRESS", None)
        self.nodes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )

    def start_head(self, cpus: int = 2, resources: dict[str, float] | None = None) -> None:
        gcs, client = free_ports(2)
        self._start(
            "head",
            ["--head", f"--port={gcs}", f"--ray-client-server-port={client}", "--include-dashboard=false",
             "--dashboard-host=127.0.0.1"],
            cpus,
            resources or {},
        )  # fmt: skip
        self.address = f"127.0.0.1:{gcs}"

    def add_node(self, name: str, cpus: int = 1, resources: dict[str, float] | None = None) -> None:
        self._start(name, [f"--address={self.address}"], cpus, resources or {})

    def driver_env(self) -> dict[str, str]:
        """The environment of a process that connects to this cluster."""
        return {**os.environ, **LOOPBACK_ENV, "RAY_ADDRESS": self.address}

    def wait_started(self, timeout: float = 120.0) -> None:
        """Wait until every node says it started (`ray start` prints it once its processes are up)."""
        deadline = time.monotonic() + timeout
        for name in list(self.nodes):
            retried = False
            while "Ray runtime started" not in self.output(name):
                if self.nodes[name].poll() is not None:
                    # a loaded machine may take longer than the 30 s Ray gives a node to register
                    if retried or "timed out during startup" not in self.output(name):
                        raise RuntimeError(f"ray node {name} exited: {self.output(name)}")
                    retried = True
                    self._start(name, *self._specs[name])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"ray node {name} did not start: {self.output(name)}")
                time.sleep(0.2)

    def node_ids(self, count: int, timeout: float = 60.0) -> dict[str, str]:
        """Resource name -> id of the live node that holds it (`""`: the head), once `count` nodes are
        alive, read through this process's connection (the driver's)."""
        import ray

        deadline = time.monotonic() + timeout
        while True:
            alive = [n for n in ray.nodes() if n["Alive"]]
            if len(alive) >= count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(alive)} of {count} Ray nodes up")
            time.sleep(0.2)
        ids = {}
        for n in alive:
            custom = [k for k in n["Resources"] if k not in _BUILTIN and not k.startswith("node:")]
            ids[custom[0] if custom else ""] = str(n["NodeID"])
        return ids

    def output(self, name: str) -> str:
        try:
            return (self.tmp / f"{name}.out").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def kill_node(self, name: str) -> None:
        """Kill one node, its raylet and its workers, at once (a machine lost)."""
        proc = self.nodes.pop(name)
        pids = _tree(proc.pid)
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        """Kill every node's process group, then what is left of this cluster's processes."""
        for proc in self.nodes.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.nodes.values():
            proc.wait(10)
        self.nodes.clear()
        for p in self.leftovers():
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(self.leftovers(), timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self) -> list[psutil.Process]:
        """Processes still running that belong to this cluster (their command line names its folder)."""
        mine = str(self.tmp)
        found = []
        for p in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(mine in arg for arg in p.info["cmdline"] or ()):
                    found.append(p)
        return found


_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}


def _tree(pid: int) -> list[int]:
    try:
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.Error:
        return [pid]
