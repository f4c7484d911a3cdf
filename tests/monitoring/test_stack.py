"""`mlops monitoring up|down|status` without a gateway: the generated configuration (checked by the real
promtool and amtool), and every way `up` refuses to start — located, exit 2, nothing left running."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml

from mlops_nocode.monitoring import promconfig
from mlops_nocode.spec import SpecError
from tests.api.conftest import free_port
from tests.monitoring.stack_support import cli, need_binaries, poll

UNREACHABLE = f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.key"
    path.write_text("mlk_0123456789abcdef_notarealsecret\n")
    path.chmod(0o600)
    return path


def _nothing_started(home: Path) -> None:
    assert not (home / "monitoring" / "stack.json").exists()
    mine = [p for p in psutil.process_iter(["cmdline"]) if str(home) in " ".join(p.info["cmdline"] or [])]
    assert mine == [], mine


def test_gateway_urls_become_scrape_targets() -> None:
    t = promconfig.gateway_target("http://127.0.0.1:8000/")
    assert (t.scheme, t.address, t.prefix) == ("http", "127.0.0.1:8000", "")
    t = promconfig.gateway_target("https://mlops.example.org/platform/")
    assert (t.scheme, t.address, t.prefix, t.url) == (
        "https", "mlops.example.org:443", "/platform", "https://mlops.example.org:443/platform"
    )  # fmt: skip
    assert promconfig.gateway_target("http://[::1]:9000").address == "[::1]:9000"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:8000",
        "http://user:pass@127.0.0.1:8000",
        "http://127.0.0.1:8000/?token=x",
        "http://127.0.0.1:8000/#x",
        "http://127.0.0.1:8000/\n- job_name: evil",
        'http://127.0.0.1:8000/"}]',
        "http://host name:8000",
        "http://127.0.0.1:99999",
        "http://a'b:80",
        "http://127.0.0.1:8000/$(reboot)",
        "",
    ],
)
def test_bad_gateway_urls_are_located_errors(url: str) -> None:
    with pytest.raises(SpecError) as e:
        promconfig.gateway_target(url)
    assert e.value.problems[0].where == "--gateway"


def test_generated_configuration_passes_promtool_and_amtool(tmp_path: Path) -> None:
    need_binaries()
    target = promconfig.gateway_target("http://127.0.0.1:8000/gw")
    creds = tmp_path / "scrape.key"
    creds.write_text("mlk_x_y")
    rules = tmp_path / "rules"
    rules.mkdir()
    text = promconfig.prometheus_config(
        target,
        creds,
        9090,
        alertmanager_port=9093,
        rule_files=[str(rules / "*.yml")],
        scrape_interval="2s",
        workers=["127.0.0.1:9101", "worker.example.org:9101"],
    )
    config = yaml.safe_load(text)
    gateway = config["scrape_configs"][0]
    assert gateway["job_name"] == promconfig.GATEWAY_JOB and gateway["metrics_path"] == "/gw/metrics"
    assert gateway["authorization"] == {"type": "Bearer", "credentials_file": str(creds)}
    workers = config["scrape_configs"][1]
    assert workers == {
        "job_name": promconfig.WORKER_JOB,
        "static_configs": [{"targets": ["127.0.0.1:9101", "worker.example.org:9101"]}],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    (tmp_path / "prometheus.yml").write_text(text)
    check = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    am = yaml.safe_load(promconfig.alertmanager_config(target, creds))
    hook = am["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:8000/gw/api/v1/alerts" and hook["send_resolved"] is True
    (tmp_path / "alertmanager.yml").write_text(promconfig.alertmanager_config(target, creds))
    check = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_without_the_binaries_it_names_the_debian_packages(
    home: Path, tmp_path: Path, key_file: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE, "--key-file", str(key_file),
            env={"PATH": str(empty)})  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in " ".join(r.stderr.split())
    _nothing_started(home)


@pytest.mark.parametrize("option", ["--prometheus-port", "--alertmanager-port"])
def test_a_port_in_use_names_its_option(home: Path, key_file: Path, option: str) -> None:
    need_binaries()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        other = "--alertmanager-port" if option == "--prometheus-port" else "--prometheus-port"
        r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE, "--key-file", str(key_file),
                option, port, other, str(free_port()))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert option in r.stderr and port in r.stderr
    _nothing_started(home)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--gateway", "http://127.0.0.1:8000/\nx: 1"], "--gateway"),
        (["--scrape-interval", "1s\nglobal: {}"], "--scrape-interval"),
        (["--scrape-interval", "0s"], "--scrape-interval"),
        (["--key-file", "/nonexistent/key"], "--key-file"),
        (["--worker", "127.0.0.1"], "--worker"),
        (["--worker", "127.0.0.1:9101\n- job_name: x"], "--worker"),
        (["--worker", "[::1]:0"], "--worker"),
    ],
)
def test_bad_options_are_located_and_change_nothing(
    home: Path, key_file: Path, args: list[str], where: str
) -> None:
    need_binaries()
    base = ["--gateway", UNREACHABLE, "--key-file", str(key_file)]
    r = cli(home, "monitoring", "up", *base, *args, "--json")
    assert r.returncode == 2, r.stderr
    assert [p["where"] for p in json.loads(r.stdout)["problems"]] == [where]
    _nothing_started(home)


def test_an_empty_key_file_is_refused(home: Path, tmp_path: Path) -> None:
    need_binaries()
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE, "--key-file", str(empty))
    assert r.returncode == 2 and "--key-file" in r.stderr
    _nothing_started(home)


def test_without_a_gateway_database_it_asks_for_a_key_file(home: Path) -> None:
    need_binaries()
    r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE)
    assert r.returncode == 2, r.stderr
    assert "--key-file" in r.stderr and "no gateway database" in r.stderr
    _nothing_started(home)
    assert not (home / "mlops.db").exists()


def test_a_binary_that_hangs_is_killed_with_its_group(home: Path, tmp_path: Path, key_file: Path) -> None:
    """A `prometheus` that never gets ready (and ignores SIGTERM, with a child): `up` gives up after the
    ready timeout, kills the whole group and says why, with the end of its log."""
    fake = tmp_path / "prometheus"
    child = tmp_path / "child.pid"
    fake.write_text(
        f"#!/bin/sh\ntrap '' TERM\necho 'stuck starting'\nsleep 300 &\necho $! > {child}\n"
        "while :; do sleep 1; done\n"
    )
    fake.chmod(0o755)
    env = {"MONITORING_PROMETHEUS_BINARY": str(fake), "MONITORING_READY_TIMEOUT": "3"}
    r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE, "--key-file", str(key_file),
            "--prometheus-port", str(free_port()), "--alertmanager-port", str(free_port()),
            env=env)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "was not ready within 3s" in r.stderr and "stuck starting" in r.stderr
    left = [p for p in psutil.process_iter(["cmdline"]) if str(fake) in " ".join(p.info["cmdline"] or [])]
    assert [p for p in left if p.status() != psutil.STATUS_ZOMBIE] == []
    pid = int(child.read_text())  # the child ignored SIGTERM too: SIGKILL to the group ended it
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    _nothing_started(home)


def test_an_unreachable_gateway_is_a_note_and_shows_down(home: Path, key_file: Path) -> None:
    """Prometheus starts anyway (the gateway-down alert is for this); status shows the target down."""
    need_binaries()
    r = cli(home, "monitoring", "up", "--gateway", UNREACHABLE, "--key-file", str(key_file),
            "--prometheus-port", str(free_port()), "--alertmanager-port", str(free_port()),
            "--scrape-interval", "1s")  # fmt: skip
    try:
        assert r.returncode == 0, r.stderr
        assert "does not answer" in r.stderr and "Prometheus:" in r.stderr

        def target() -> dict[str, str] | None:
            answer = json.loads(cli(home, "monitoring", "status", "--json").stdout)
            t = answer.get("gateway_target")
            return t if t and t["health"] == "down" else None

        assert "refused" in poll("the gateway target down", target)["last_error"]
        assert key_file.exists()  # the user's file is theirs: `down` does not delete it
        shown = cli(home, "monitoring", "status")
        assert "prometheus: ready" in shown.stdout and "down" in shown.stdout
    finally:
        down = cli(home, "monitoring", "down")
    assert down.returncode == 0 and key_file.exists()
    _nothing_started(home)


def test_shipped_rules_are_loaded(home: Path, key_file: Path) -> None:
    """Whatever deploy/monitoring/prometheus/rules/*.yml holds is copied beside the configuration."""
    from mlops_nocode.monitoring.files import shipped_monitoring
    from mlops_nocode.monitoring.stack import _rules

    shipped = sorted(p.name for p in (shipped_monitoring() / "prometheus" / "rules").glob("*.yml"))
    files = _rules(home)
    copied = sorted(p.name for p in (home / "monitoring" / "rules").glob("*.yml"))
    assert copied == shipped and (files == [str(home / "monitoring" / "rules" / "*.yml")]) == bool(shipped)
