"""deploy/monitoring/docker-compose.yml, checked without a Docker engine: valid against the Compose
Specification's JSON Schema (vendored by check-jsonschema), Grafana on the host's port 3001, every port on
loopback, the gateway credentials as Compose secrets from files named by the user, and the mounts point
at the shipped files."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.deploy.monitoring_support import MONITORING
from tests.deploy.test_images_and_compose import validate_compose

COMPOSE = MONITORING / "docker-compose.yml"


def test_the_monitoring_compose_file_matches_the_compose_specification() -> None:
    done = validate_compose(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_is_real_here_too(tmp_path: Path) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["grafana"]["portz"] = ["3001:3000"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc))
    done = validate_compose(broken)
    assert done.returncode == 1 and "'portz' was unexpected" in done.stdout


def test_prometheus_alertmanager_grafana_and_node_exporter_on_loopback_ports() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"prometheus", "alertmanager", "grafana", "node-exporter"}
    assert services["grafana"]["ports"] == ["127.0.0.1:${GRAFANA_PORT:-3001}:3000"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        assert service["networks"] == ["platform"], name  # the platform's network: gateway:8000, worker
    for name in ("prometheus", "alertmanager", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    assert services["grafana"]["depends_on"]["prometheus"] == {"condition": "service_healthy"}


def test_the_mounts_are_the_shipped_files() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    mounts = {
        target: source
        for service in services.values()
        for volume in service.get("volumes", [])
        for source, target, *_ in [volume.split(":")]
        if source.startswith("./")
    }
    assert mounts == {
        "/etc/prometheus": "./prometheus",
        "/etc/alertmanager": "./alertmanager",
        "/etc/grafana/provisioning": "./grafana/provisioning",
        "/var/lib/grafana/dashboards": "./grafana/dashboards",
    }
    for source in ("./prometheus/prometheus.yml", "./alertmanager/alertmanager.yml"):
        assert (MONITORING / source).is_file()
    prometheus = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    alertmanager = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yml").read_text())
    hook = alertmanager["receivers"][0]["webhook_configs"][0]
    gateway_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "mlops-gateway")
    # each container gets its own credential at the path its configuration reads
    assert gateway_job["authorization"]["credentials_file"] == "/run/secrets/gateway-token"
    assert hook["http_config"]["authorization"]["credentials_file"] == "/run/secrets/gateway-token"
    assert services["prometheus"]["secrets"] == [
        {"source": "prometheus-token", "target": "gateway-token"},
        {"source": "litellm-token", "target": "litellm-token"},
    ]
    assert services["alertmanager"]["secrets"] == [
        {"source": "alertmanager-token", "target": "gateway-token"}
    ]
    assert hook["url"] == "http://gateway:8000/api/v1/alerts"
    assert gateway_job["static_configs"][0]["targets"] == ["gateway:8000"]


def test_no_secret_value_in_the_file() -> None:
    text = COMPOSE.read_text()
    doc = yaml.safe_load(text)
    files = {name: secret["file"] for name, secret in doc["secrets"].items()}
    assert files.pop("litellm-token") == "${LITELLM_TOKEN_FILE:-/dev/null}"  # optional: no LiteLLM, no key
    for name, file in files.items():
        assert re.fullmatch(r"\$\{[A-Z_]+_TOKEN_FILE:\?.+\}", file), (name, file)
    assert doc["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    assert doc["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
