"""The webhook queue on real databases (SQLite and PostgreSQL): exactly-once enqueue, atomic concurrent
claims, fenced results; and the host policy with a pinned connection to a real receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlops_nocode.hosts import HostPolicy, HostRefused, pinned_post
from mlops_nocode.runs.db import Database
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.runs.webhook_queue import Claim, DeliveryQueue
from mlops_nocode.runs.webhooks import WebhookStore
from mlops_nocode.settings import Settings
from tests.api.pgcluster import Cluster

KEY = "k" * 48


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        cluster: Cluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    database = Database(url)
    database.migrate(tmp_path)
    yield database
    database.close()


def _hooks(db: Database, count: int) -> list[str]:
    store = WebhookStore(db, SecretStore(db, KEY))
    return [store.create(f"http://127.0.0.1:9/h{i}", ["run.failed"], None)["id"] for i in range(count)]


def test_enqueue_is_exactly_once_per_run_hook_event(db: Database) -> None:
    queue = DeliveryQueue(db, Settings())
    a, b = _hooks(db, 2)
    assert queue.enqueue("run-1", "run.failed", {a: "{}", b: "{}"}) == 2
    assert queue.enqueue("run-1", "run.failed", {a: "{}", b: "{}"}) == 0  # a second end changes nothing
    assert queue.enqueue("run-2", "run.failed", {a: "{}"}) == 1


def test_concurrent_claims_take_each_delivery_once(db: Database) -> None:
    queue = DeliveryQueue(db, Settings())
    hooks = _hooks(db, 12)
    queue.enqueue("run-1", "run.failed", {h: "{}" for h in hooks})
    taken: list[list[Claim]] = [[] for _ in range(6)]

    def claimer(i: int) -> None:
        while (claim := queue.claim(f"d{i}")) is not None:
            taken[i].append(claim)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [c.id for claims in taken for c in claims]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 12  # each once, none left behind
    assert all(c.attempt == 1 for claims in taken for c in claims)


def test_results_are_fenced_and_retries_scheduled(db: Database) -> None:
    queue = DeliveryQueue(db, Settings(webhook_attempts=2, webhook_backoff=30))
    (hook,) = _hooks(db, 1)
    queue.enqueue("run-1", "run.failed", {hook: '{"id": "x"}'})
    claim = queue.claim("me")
    assert claim is not None and claim.body == b'{"id": "x"}' and claim.url == "http://127.0.0.1:9/h0"
    assert queue.claim("other") is None  # leased
    assert queue.settle(claim, "other", 200, None) == "lost"  # not its claim: logged, state untouched
    assert queue.settle(claim, "me", 500, "HTTP 500") == "pending"
    assert queue.claim("me") is None  # due again only after the 30 s backoff


def test_out_of_attempts_fails(db: Database) -> None:
    queue = DeliveryQueue(db, Settings(webhook_attempts=1))
    (hook,) = _hooks(db, 1)
    queue.enqueue("run-1", "run.failed", {hook: "{}"})
    claim = queue.claim("me")
    assert claim is not None
    assert queue.settle(claim, "me", None, "ConnectionRefusedError") == "failed"
    assert queue.claim("me") is None


# -- host policy ------------------------------------------------------------------------------------------


def _policy(host: str = "127.0.0.1", allowed: str = "*", **answers: list[str]) -> HostPolicy:
    def resolve(name: str, port: int) -> list[str]:
        if name in answers:
            return answers[name].pop(0) if isinstance(answers[name][0], list) else answers[name]
        raise OSError(f"{name}: unknown to this test resolver")

    return HostPolicy.from_settings(Settings(host=host, webhook_allowed_hosts=allowed), resolve)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/", "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/", "http://[::]/"],
)
def test_link_local_and_unspecified_always_refused(host: str, url: str) -> None:
    with pytest.raises(HostRefused, match=r"link-local|not a unicast"):
        _policy(host, "*, 169.254.0.0/16, fe80::/10").check_url(url)


def test_private_and_loopback_allowed_on_loopback_only() -> None:
    for url in ("http://127.0.0.1:8000/h", "http://10.1.2.3/h", "http://[::1]/h", "http://192.168.1.5/h"):
        assert _policy("127.0.0.1").check_url(url)
        with pytest.raises(HostRefused, match=r"beyond loopback \(HOST=0.0.0.0\).*WEBHOOK_ALLOWED_HOSTS"):
            _policy("0.0.0.0").check_url(url)
    assert _policy("0.0.0.0").check_url("https://8.8.8.8/h")  # a public address is fine
    # allowed explicitly, by CIDR or by name; `*` is not explicit
    assert _policy("0.0.0.0", "*, 10.0.0.0/8").check_url("http://10.1.2.3/h")
    with pytest.raises(HostRefused):
        _policy("0.0.0.0", "*, 10.0.0.0/8").check_url("http://127.0.0.1/h")
    assert _policy("0.0.0.0", "hooks.corp", **{"hooks.corp": ["10.0.0.7"]}).check_url("http://hooks.corp/")
    # the real resolver: localhost is loopback
    with pytest.raises(HostRefused, match=r"localhost \(resolves to 127.0.0.1\)"):
        HostPolicy.from_settings(Settings(host="0.0.0.0")).check_url("http://localhost/h")


def test_allowlist_and_resolution() -> None:
    policy = _policy("0.0.0.0", "*.example.org, 203.0.113.0/24", **{"a.example.org": ["93.184.216.34"]})
    assert policy.check_url("http://a.example.org/h")
    assert policy.check_url("http://203.0.113.9/h")
    with pytest.raises(HostRefused, match=r"8\.8\.8\.8 is not in WEBHOOK_ALLOWED_HOSTS"):
        policy.check_url("http://8.8.8.8/h")
    with pytest.raises(HostRefused, match=r"cannot resolve host .b\.example\.org."):
        policy.check_url("http://b.example.org/h")
    # every address must pass: one bad answer among good ones refuses the host
    mixed = _policy("0.0.0.0", **{"mixed.test": ["93.184.216.34", "169.254.169.254"]})
    with pytest.raises(HostRefused, match="link-local"):
        mixed.check_url("https://mixed.test/h")


def test_dns_rebinding_is_caught_at_delivery() -> None:
    answers: list[Any] = [["93.184.216.34"], ["169.254.169.254"]]
    policy = _policy("0.0.0.0", **{"rebind.test": answers})
    assert policy.check_url("http://rebind.test/h")  # at registration
    with pytest.raises(HostRefused, match=r"rebind.test \(resolves to 169.254.169.254\) is link-local"):
        policy.check_url("http://rebind.test/h")  # at delivery, the name now points at metadata


def test_pinned_post_connects_to_the_checked_address() -> None:
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, self.headers["Host"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        url = f"http://hooks.invalid:{port}/in?x=1"  # a name no DNS knows: only the pinned address works
        addresses = _policy(**{"hooks.invalid": ["127.0.0.1"]}).check_url(url)
        assert pinned_post(url, addresses, b"{}", {"Content-Type": "application/json"}, 5) == 204
        assert seen == [("/in?x=1", f"hooks.invalid:{port}", b"{}")]
    finally:
        httpd.shutdown()
        httpd.server_close()
