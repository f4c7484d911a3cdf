"""Where webhooks may be sent (an SSRF guard), and a POST pinned to the address that was checked.

The policy is applied when a webhook is registered and again at every delivery, after DNS resolution:

- link-local addresses (169.254.0.0/16, where cloud metadata services answer on 169.254.169.254, and
  fe80::/10), unspecified, multicast and reserved addresses are always refused (IPv4-mapped IPv6
  addresses are judged as the IPv4 address they carry);
- the URL's host must match an entry of `WEBHOOK_ALLOWED_HOSTS` (default `*`, any host): a hostname
  (exact, or `*.example.org` for its subdomains), an IP address, or a CIDR containing every address the
  host resolves to;
- private, loopback and other non-global addresses (10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, ::1,
  fc00::/7...) are allowed when the gateway listens on loopback only (`HOST`); beyond loopback only when
  an entry names the host or covers the address explicitly (`*` does not).

Every address a name resolves to must pass. The connection then goes to a checked address (no second
lookup: a DNS answer that changes between check and connection, "DNS rebinding", cannot redirect it), with
the URL's host in the `Host` header and, for https, in SNI and certificate verification. Redirects are not
followed (a 3xx is a failed attempt) and no proxy is used.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mlops_nocode.settings import Settings, allowed_host_entries

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
MAX_ANSWER_BYTES = 64 * 1024


class HostRefused(ValueError):
    """A webhook URL the policy refuses; the message says what and how to fix it."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (getaddrinfo), in the resolver's order, without duplicates."""
    seen: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def _address(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class HostPolicy:
    """WEBHOOK_ALLOWED_HOSTS and whether local (private/loopback) addresses are allowed by default."""

    any_host: bool = True
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    local_ok: bool = True
    listening: str = "127.0.0.1"
    resolve: Resolver = field(default=system_resolver, compare=False)
    purpose: str = field(default="webhook", compare=False)
    """What is sent, in messages: "webhook", or "http step request" (runtime/executors/http.py)."""

    @classmethod
    def from_settings(cls, settings: Settings, resolve: Resolver = system_resolver) -> HostPolicy:
        """The policy of these settings (local addresses allowed by default when HOST is loopback)."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        any_host = False
        for entry in allowed_host_entries(settings.webhook_allowed_hosts):
            if entry == "*":
                any_host = True
            elif _address(entry) is not None or "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                names.add(entry)
        return cls(
            any_host,
            frozenset(names),
            tuple(suffixes),
            tuple(networks),
            settings.loopback,
            settings.host,
            resolve,
        )

    def _named(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def check_url(self, url: str) -> list[IPAddress]:
        """The checked addresses to connect to for `url` (HostRefused says why not, and how to fix)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HostRefused(
                f"{parts.scheme or 'no'} scheme or no host: a {self.purpose} URL is http:// or https:// "
                "with a host (https://example.org/hooks/mlops)"
            )
        if parts.username is not None or parts.password is not None:
            raise HostRefused(
                "the URL carries a user name or password (they would be stored and shown in clear, and are "
                "not sent): drop them and check the X-MLOPS-Signature header in the receiver instead"
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise HostRefused("the port is not a number between 0 and 65535: fix the URL") from None
        return self.check(parts.hostname, port)

    def check(self, host: str, port: int) -> list[IPAddress]:
        """Resolve `host` (unless it is an IP address) and check every address it has."""
        name = host.lower().rstrip(".")
        literal = _address(name)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = [a for a in (_address(t) for t in self.resolve(name, port)) if a is not None]
            except (OSError, UnicodeError) as e:
                raise HostRefused(
                    f"cannot resolve host {name!r} ({getattr(e, 'strerror', None) or e}): use a hostname the "
                    "gateway can resolve, or an IP address"
                ) from None
            if not found:
                raise HostRefused(f"host {name!r} has no address: use a hostname that resolves")
            addresses = found
        named = literal is None and self._named(name)
        for ip in addresses:
            self._check_address(name, ip, named)
        return addresses

    def _check_address(self, name: str, ip: IPAddress, named: bool) -> None:
        where = f"{name}" if _address(name) is not None else f"{name} (resolves to {ip})"
        if ip.is_link_local:
            raise HostRefused(
                f"{where} is link-local (169.254.0.0/16, fe80::/10, where cloud metadata services answer): "
                f"{self.purpose}s are never sent there; use a routable address of the receiver"
            )
        if ip.is_unspecified or ip.is_multicast or (ip.is_reserved and not ip.is_loopback):  # ::1 is in ::/8
            raise HostRefused(f"{where} is not a unicast host address: use the receiver's own address")
        explicit = named or any(ip in net for net in self.networks)
        if not (self.any_host or explicit):
            raise HostRefused(
                f"{where} is not in WEBHOOK_ALLOWED_HOSTS: add the hostname, its IP or a CIDR covering it "
                "to WEBHOOK_ALLOWED_HOSTS (comma-separated), or use an allowed host"
            )
        local = ip.is_loopback or ip.is_private or not ip.is_global
        if local and not self.local_ok and not explicit:
            raise HostRefused(
                f"{where} is a private or loopback address and the gateway listens beyond loopback "
                f"(HOST={self.listening}): allow it explicitly by adding the hostname, the IP or its CIDR "
                "to WEBHOOK_ALLOWED_HOSTS"
            )


def _connect(addresses: Sequence[IPAddress], port: int, timeout: float) -> socket.socket:
    """A connection to the first of `addresses` that answers."""
    last: OSError | None = None
    for ip in addresses:
        try:
            return socket.create_connection((str(ip), port), timeout=timeout)
        except OSError as e:
            last = e
    assert last is not None
    raise last


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, addresses: Sequence[IPAddress], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, float(self.timeout or 10))


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, addresses: Sequence[IPAddress], timeout: float) -> None:
        self.pinned_context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.pinned_context)
        self.addresses = addresses

    def connect(self) -> None:
        raw = _connect(self.addresses, self.port, float(self.timeout or 10))
        self.sock = self.pinned_context.wrap_socket(raw, server_hostname=self.host)


def pinned_post(
    url: str, addresses: Sequence[IPAddress], body: bytes, headers: dict[str, str], timeout: float
) -> int:
    """POST `body` to `url`, connecting only to `addresses`; the answer's status code (OSError,
    ssl.SSLError or http.client.HTTPException when there is none)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    kind = _PinnedHTTPS if https else _PinnedHTTP
    conn = kind(host, port, addresses, timeout)
    try:
        conn.request("POST", target, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(MAX_ANSWER_BYTES)
        return int(answer.status)
    finally:
        conn.close()
