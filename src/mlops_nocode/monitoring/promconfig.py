"""The configuration files of the local monitoring stack (`mlops monitoring up`): Prometheus scraping the
gateway with a bearer credential read from a file, and Alertmanager posting alerts to the gateway's
`/api/v1/alerts`. Pure functions; every value goes through `yaml.safe_dump`, and the gateway URL is
checked first, so nothing a user gives can add keys or documents to the YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mlops_nocode.spec import Problem, SpecError

GATEWAY_JOB = "mlops-gateway"  # the job name the shipped alert rules and dashboards use for the gateway
WORKER_JOB = "mlops-worker"  # `mlops worker --metrics-port` processes (as in the shipped prometheus.yml)
PROMETHEUS_JOB = "prometheus"
ALERTMANAGER_JOB = "alertmanager"
RECEIVER = "mlops-gateway"
ALERTS_PATH = "/api/v1/alerts"
DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})(ms|s|m|h)$")
HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])$"
)
PATH_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*/?$")


@dataclass(frozen=True)
class GatewayTarget:
    """Where Prometheus scrapes the gateway: `scheme://address` + `prefix`/metrics."""

    scheme: str
    address: str  # host:port
    prefix: str  # "" or "/path" without a trailing slash

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}{self.prefix}"


def gateway_target(url: str, where: str = "--gateway") -> GatewayTarget:
    """The scrape target of a gateway base URL (`http(s)://host[:port][/prefix]`); SpecError when it is
    not one."""
    fix = "give the gateway's base URL, e.g. http://127.0.0.1:8000"
    text = url.strip()
    if not text or any(c.isspace() or ord(c) < 32 for c in text) or len(text) > 2000:
        raise SpecError(Problem(f"invalid gateway URL {url!r}: empty, too long or with spaces", where, fix))
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise SpecError(Problem(f"invalid gateway URL {url!r}: {e}", where, fix)) from None
    if parts.scheme not in ("http", "https"):
        raise SpecError(Problem(f"invalid gateway URL {url!r}: the scheme must be http or https", where, fix))
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise SpecError(
            Problem(
                f"invalid gateway URL {url!r}: no user, password, query or fragment may be given",
                where,
                fix + " (the credential goes in --key-file)",
            )
        )
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if not host or not HOST_RE.match(host):
        raise SpecError(Problem(f"invalid gateway URL {url!r}: {host!r} is not a host name", where, fix))
    if not PATH_RE.match(parts.path or "/"):
        raise SpecError(
            Problem(
                f"invalid gateway URL {url!r}: the path may hold only letters, digits and ._~-/", where, fix
            )
        )
    port = port or (443 if parts.scheme == "https" else 80)
    return GatewayTarget(parts.scheme, f"{host}:{port}", (parts.path or "").rstrip("/"))


def worker_target(value: str, where: str = "--worker") -> str:
    """`host:port` of a worker's `--metrics-port` (SpecError otherwise)."""
    host, _, port = value.strip().rpartition(":")
    if not HOST_RE.match(host) or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SpecError(
            Problem(
                f"invalid worker address {value!r}",
                where,
                "give HOST:PORT of a worker's --metrics-port, e.g. 127.0.0.1:9101",
            )
        )
    return f"{host}:{int(port)}"


def check_duration(value: str, where: str) -> str:
    """A Prometheus duration such as `15s`, `500ms` or `1m` (SpecError otherwise)."""
    if not DURATION_RE.match(value):
        raise SpecError(
            Problem(f"invalid duration {value!r}", where, "give a number and a unit: 500ms, 2s, 15s, 1m, 1h")
        )
    return value


def prometheus_config(
    gateway: GatewayTarget,
    credentials_file: Path,
    prometheus_port: int,
    *,
    alertmanager_port: int | None,
    rule_files: list[str],
    scrape_interval: str = "15s",
    workers: list[str] | None = None,
) -> str:
    """prometheus.yml: the gateway (bearer credential from `credentials_file`), the workers' own
    `/metrics` (`host:port` each), Prometheus itself, the Alertmanager when there is one, the rules, and
    where alerts go."""
    scrape: list[dict[str, Any]] = [
        {
            "job_name": GATEWAY_JOB,
            "scheme": gateway.scheme,
            "metrics_path": f"{gateway.prefix}/metrics",
            "authorization": {"type": "Bearer", "credentials_file": str(credentials_file)},
            "static_configs": [{"targets": [gateway.address]}],
        },
        {"job_name": PROMETHEUS_JOB, "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}]},
    ]
    if workers:
        scrape.insert(1, {"job_name": WORKER_JOB, "static_configs": [{"targets": list(workers)}]})
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": rule_files,
        "scrape_configs": scrape,
    }
    if alertmanager_port is not None:
        am = f"127.0.0.1:{alertmanager_port}"
        scrape.append({"job_name": ALERTMANAGER_JOB, "static_configs": [{"targets": [am]}]})
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]}
    return "# written by `mlops monitoring up`; rewritten at each start\n" + yaml.safe_dump(
        config, sort_keys=False
    )


def alertmanager_config(gateway: GatewayTarget, credentials_file: Path) -> str:
    """alertmanager.yml: every alert, firing and resolved, posted to the gateway's alert receiver with the
    bearer credential from `credentials_file`; the gateway turns them into notifications."""
    config = {
        "route": {
            "receiver": RECEIVER,
            "group_by": ["alertname"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": RECEIVER,
                "webhook_configs": [
                    {
                        "url": gateway.url + ALERTS_PATH,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(credentials_file)}
                        },
                    }
                ],
            }
        ],
    }
    return "# written by `mlops monitoring up`; rewritten at each start\n" + yaml.safe_dump(
        config, sort_keys=False
    )
