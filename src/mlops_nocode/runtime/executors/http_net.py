"""The connections of http steps: every one goes to an address the webhook host policy checked
(mlops_nocode/hosts.py) at connect time, for the first request and every redirect hop alike, and all of
them can be interrupted from another thread (a cancel, a timeout) without waiting for the network.

The policy resolves the host once and the socket connects to one of the checked addresses (no second
lookup, so a DNS answer that changes in between, "DNS rebinding", cannot redirect it); TLS still verifies
the certificate against the URL's host name (httpcore passes it as SNI and for verification).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
from httpcore._backends.sync import SyncStream

from mlops_nocode.hosts import HostPolicy


class Interrupted(Exception):
    """The attempt was stopped while a connection was being made or used."""


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses `policy` accepts, interruptible."""

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()

    def interrupt(self) -> None:
        """Stop every connection now: a blocked connect, send or receive returns at once."""
        self.stopped.set()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):  # not connected yet (the connect loop sees it) or closed
                sock.shutdown(socket.SHUT_RDWR)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.policy.check(host, port)  # HostRefused says why, and is never retried
        last: Exception | None = None
        for ip in addresses:
            try:
                return SyncStream(self._connect(str(ip), ip.version, port, timeout))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    def _connect(self, ip: str, version: int, port: int, timeout: float | None) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        with self._lock:
            self._socks.add(sock)
        try:
            sock.setblocking(False)
            code = sock.connect_ex((ip, port))
            deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
            while code in (errno.EINPROGRESS, errno.EALREADY):
                if self.stopped.is_set():
                    raise Interrupted("stopped while connecting")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise httpcore.ConnectTimeout(f"no connection to {ip} port {port} within {timeout:g} s")
                poller = select.poll()  # select() fails on descriptors above 1023 (a busy gateway)
                poller.register(sock, select.POLLOUT)
                if poller.poll(min(left, 0.1) * 1000):
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                raise httpcore.ConnectError(f"{ip} port {port}: {os.strerror(code)}")
            if self.stopped.is_set():
                raise Interrupted("stopped while connecting")
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except BaseException:
            self.forget(sock)
            sock.close()
            raise

    def forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a GuardedBackend: no proxy from the environment, TLS verified."""

    def __init__(self, backend: GuardedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)  # given a context, it loads no certificates
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            max_keepalive_connections=0,
            network_backend=backend,
        )


def tls_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """TLS verification against certifi's authorities, plus those of `ca_bundle` (a PEM file) when given
    (OSError or ssl.SSLError when it cannot be read)."""
    context = httpx.create_ssl_context(trust_env=False)
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def guarded_client(
    policy: HostPolicy, timeout: float, user_agent: str, context: ssl.SSLContext
) -> tuple[httpx.Client, GuardedBackend]:
    """A client whose connections go only where `policy` allows, and the backend that can interrupt it."""
    backend = GuardedBackend(policy)
    client = httpx.Client(
        transport=GuardedTransport(backend, context),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent},
    )
    return client, backend
