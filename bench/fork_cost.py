"""Probe: what fork() and exit cost for a process the size of the fork server, on this machine."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import psutil

import mlops_nocode.runtime.zygote  # noqa: F401 - the fork server's imports
from bench.harness import show


def main(n: int = 100) -> list[dict[str, Any]]:
    gc.freeze()
    rss = psutil.Process().memory_info().rss / 2**20
    t = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    both = (time.perf_counter() - t) / n
    pids = []
    t = time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        pids.append(pid)
    fork_only = (time.perf_counter() - t) / n
    for pid in pids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    rows = [
        {"probe": "fork + exit + wait", "ms": round(both * 1000, 3), "server_rss_mib": round(rss, 1)},
        {"probe": "fork only", "ms": round(fork_only * 1000, 3), "server_rss_mib": round(rss, 1)},
    ]
    show("fork cost of a fork-server-sized process", rows)
    return rows


if __name__ == "__main__":
    main()
