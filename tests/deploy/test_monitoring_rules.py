"""The shipped Prometheus and Alertmanager configuration, checked by Debian's own tools: `promtool check
config` and `check rules`, the rules' unit tests (`promtool test rules`: each alert fires on the series
that should fire it and stays silent otherwise), `amtool check-config`; and the rules name only metrics
the gateway exports (monitoring/names.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlops_nocode.monitoring.files import shipped_monitoring
from mlops_nocode.monitoring.names import series_names
from tests.deploy.monitoring_support import ALERTMANAGER_YML, MONITORING, RULE_TESTS, RULES, binary

PROMETHEUS_BUILTINS = {"up"}  # the series Prometheus itself writes for each target


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_the_shipped_folder_is_the_one_the_package_finds() -> None:
    assert shipped_monitoring().resolve() == MONITORING.resolve()


def test_promtool_checks_the_prometheus_configuration_with_its_rules(tmp_path: Path) -> None:
    # the configuration names the credential file a container mounts: point it at a real (0600) file
    shutil.copytree(MONITORING / "prometheus", tmp_path / "prometheus")
    config = tmp_path / "prometheus" / "prometheus.yml"
    text = config.read_text()
    for name in ("gateway-token", "litellm-token"):
        token = tmp_path / name
        token.write_text("placeholder")
        token.chmod(0o600)
        assert text.count(f"/run/secrets/{name}") == 1
        text = text.replace(f"/run/secrets/{name}", str(token))
    config.write_text(text)
    done = _run(binary("promtool"), "check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout + done.stderr


def test_the_gateway_is_scraped_with_a_credential_file_never_a_value() -> None:
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"mlops-gateway", "mlops-worker", "litellm", "node"} <= set(jobs)
    for job in ("mlops-gateway", "litellm"):  # LiteLLM 1.108.7 asks for a key on /metrics/ too
        auth = jobs[job]["authorization"]
        assert set(auth) == {"type", "credentials_file"} and auth["type"] == "Bearer"
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert config["rule_files"] == ["rules/*.yml"]


def test_promtool_checks_the_rules() -> None:
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    done = _run(binary("promtool"), "check", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_fires_when_it_should_and_stays_silent_otherwise() -> None:
    tests = sorted(p.name for p in RULE_TESTS.glob("*.yml"))
    assert tests
    done = _run(binary("promtool"), "test", "rules", *tests, cwd=RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    # every alert has a case where it fires and one where it stays silent
    fires: set[str] = set()
    silent: set[str] = set()
    for name in tests:
        for case in yaml.safe_load((RULE_TESTS / name).read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check["exp_alerts"] else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts == fires == silent


def test_promtool_test_rules_is_real_and_catches_a_wrong_expectation(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    for path in RULES.glob("*.yml"):
        shutil.copy(path, tmp_path / "rules" / path.name)
    wrong = {
        "rule_files": [f"rules/{p.name}" for p in RULES.glob("*.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": "mlops_workers_live", "values": "3x10"}],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "MlopsNoLiveWorker", "exp_alerts": [{"exp_labels": {}}]}
                ],
            }
        ],
    }
    (tmp_path / "wrong.yml").write_text(yaml.safe_dump(wrong))
    done = _run(binary("promtool"), "test", "rules", "wrong.yml", cwd=tmp_path)
    assert done.returncode != 0 and "MlopsNoLiveWorker" in done.stdout + done.stderr


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (not its functions, keywords, labels or durations)."""
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values are not names
    expr = re.sub(r"\{[^}]*\}", "", expr)  # nor label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # nor range durations
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # nor labels
    words = re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)
    names = {m.group() for m in words if not expr[m.end() :].lstrip().startswith("(")}  # not functions
    return names - {"and", "or", "unless"}


def test_metric_names_finds_every_series_and_nothing_else() -> None:
    expr = (
        'sum by (pipeline) (rate(mlops_bogus_total{status="up"}[5m])) / on (x) group_left () up or absent(y)'
    )
    assert metric_names(expr) == {"mlops_bogus_total", "up", "y"}


def test_rules_name_only_metrics_the_gateway_exports() -> None:
    known = series_names() | PROMETHEUS_BUILTINS
    for rule in _rules():
        names = metric_names(rule["expr"])
        mlops = {n for n in names if n.startswith("mlops_")}
        assert mlops <= known, (rule.get("alert"), sorted(mlops - known))
        assert names - mlops <= PROMETHEUS_BUILTINS, (rule.get("alert"), sorted(names - mlops))
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description"} <= set(rule["annotations"])


def test_amtool_checks_the_shipped_alertmanager_configuration() -> None:
    done = _run(binary("amtool"), "check-config", str(ALERTMANAGER_YML))
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    (receiver,) = config["receivers"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/api/v1/alerts") and hook["send_resolved"] is True
    assert set(hook["http_config"]["authorization"]) == {"type", "credentials_file"}
    assert config["route"]["receiver"] == receiver["name"]
