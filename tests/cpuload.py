"""Real CPU load for the throttler's tests: one spinning interpreter per core, for as long as needed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil


@contextlib.contextmanager
def burning(timeout: float = 30.0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start one busy process per core and yield once each has spun for a while (it has used CPU time,
    polled with a deadline); kill and reap them all on exit."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
    ]
    try:
        deadline = time.monotonic() + timeout
        for p in burners:
            proc = psutil.Process(p.pid)
            while proc.cpu_times().user < 0.2:
                assert time.monotonic() < deadline, "the CPU burners did not start spinning"
                time.sleep(0.02)
        yield burners
    finally:
        for p in burners:
            p.kill()
        for p in burners:
            p.wait(timeout=10)
