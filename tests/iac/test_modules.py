"""Generic checks of every Terraform module under deploy/terraform/modules (plus a provider-free example
fixture): formatting, validation where no provider download is needed, files, pinned versions,
documented variables, and the provider-schema contract (tests/iac/schema_check.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.iac import schema_check as sc
from tests.iac.support import needs_terraform

FIXTURE = Path(__file__).parent / "fixtures" / "modules" / "example"
MODULES = [*sorted(p for p in sc.MODULES.glob("*") if p.is_dir()), FIXTURE]
IDS = [m.name if m != FIXTURE else "fixture-example" for m in MODULES]
PINNED = re.compile(r"^\s*(=\s*)?\d+\.\d+\.\d+\s*$|^\s*~>\s*\d+\.\d+(\.\d+)?\s*$")


def terraform() -> str:
    found = shutil.which("terraform") or shutil.which("tofu")
    assert found, "terraform or tofu is needed (install terraform >= 1.5 or OpenTofu)"
    return found


def _blocks(files: list[tuple[Path, dict[str, Any]]], kind: str) -> dict[str, dict[str, Any]]:
    out = {}
    for _, doc in files:
        for entry in doc.get(kind, []):
            out.update({sc.unquote(k): v for k, v in entry.items()})
    return out


@needs_terraform
@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_terraform_fmt(module: Path) -> None:
    argv = [terraform(), "fmt", "-check", "-recursive", "-diff", str(module)]
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, f"run `terraform fmt -recursive {module}`:\n{done.stdout}{done.stderr}"


def _downloads(module: Path) -> list[str]:
    """The providers a module needs that would have to be downloaded (none can be, here)."""
    providers = sc.required_providers(sc.load_module(module))
    return sorted(s["source"] for s in providers.values() if sc.normalise_source(s["source"]) != sc.BUILTIN)


PROVIDER_FREE = [m for m in MODULES if not _downloads(m)]


def test_modules_needing_providers_are_checked_against_schema_files() -> None:
    """`terraform validate` needs the providers, which cannot be downloaded here: the modules that need
    them are checked against deploy/terraform/schemas instead (test_resources_match_the_provider_schemas),
    and at least one module (the fixture) is validated for real."""
    assert FIXTURE in PROVIDER_FREE
    for module in MODULES:
        for source in _downloads(module):
            name = sc.normalise_source(source).split("/")[-1]
            assert (sc.SCHEMAS / f"{name}.json").is_file(), f"{module.name}: no schema file for {source}"


@needs_terraform
@pytest.mark.parametrize("module", PROVIDER_FREE, ids=[m.name for m in PROVIDER_FREE])
def test_terraform_validate_where_no_provider_download_is_needed(module: Path, tmp_path: Path) -> None:
    copy = tmp_path / module.name
    shutil.copytree(module, copy)
    env = {"PATH": str(Path(terraform()).parent), "HOME": str(tmp_path), "TF_IN_AUTOMATION": "1"}
    init_argv = [terraform(), "init", "-backend=false", "-input=false", "-no-color"]
    init = subprocess.run(init_argv, cwd=copy, capture_output=True, text=True, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    validate_argv = [terraform(), "validate", "-json"]
    done = subprocess.run(validate_argv, cwd=copy, capture_output=True, text=True, env=env)
    assert json.loads(done.stdout)["valid"] is True, done.stdout


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_module_files_exist(module: Path) -> None:
    needed = ("variables.tf", "outputs.tf", "versions.tf", "README.md")
    missing = [f for f in needed if not (module / f).is_file()]
    assert not missing, f"{module}: missing {missing}"


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_versions_pin_terraform_and_providers(module: Path) -> None:
    versions = sc.load_module(module)
    terraform_blocks = [t for _, doc in versions for t in doc.get("terraform", [])]
    assert any("required_version" in t for t in terraform_blocks), f"{module}: no required_version"
    for name, spec in sc.required_providers(versions).items():
        if sc.normalise_source(spec.get("source", "")) == sc.BUILTIN:
            continue
        assert spec.get("source"), f"{module}: provider {name} has no source"
        version = spec.get("version", "")
        assert PINNED.match(version), f"{module}: {name} version {version!r}: pin it (`= x.y.z` or `~> x.y`)"


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_variables_and_outputs_are_documented(module: Path) -> None:
    files = sc.load_module(module)
    readme = (module / "README.md").read_text(encoding="utf-8")
    for name, body in _blocks(files, "variable").items():
        assert body.get("description"), f"{module}: variable {name} has no description"
        assert body.get("type"), f"{module}: variable {name} has no type"
        assert f"`{name}`" in readme, f"{module}: variable {name} is not in README.md (as `{name}`)"
    for name, body in _blocks(files, "output").items():
        assert body.get("description"), f"{module}: output {name} has no description"


def test_schema_files_are_well_formed() -> None:
    schemas, problems = sc.load_schemas()
    assert problems == []
    assert sc.BUILTIN in schemas


@pytest.mark.parametrize("module", MODULES, ids=IDS)
def test_resources_match_the_provider_schemas(module: Path) -> None:
    schemas, _ = sc.load_schemas()
    assert sc.check_module(module, schemas) == []


# -- the checker itself ---------------------------------------------------------------------------

KUBE = {
    "provider": "hashicorp/kubernetes",
    "version": "2.35.1",
    "source": "https://example.invalid/fixture",
    "date": "2026-01-01",
    "resources": {
        "kubernetes_job": {
            "arguments": ["wait_for_completion"],
            "blocks": {
                "metadata": {"arguments": ["name", "labels"], "blocks": {}},
                "spec": {"arguments": [], "blocks": {"container": {"arguments": ["name"], "blocks": {
                    "env": {"arguments": ["name", "value"], "blocks": {}}}}}},
            },
        }
    },
}  # fmt: skip

VERSIONS = """
terraform {
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
  }
}
"""


def _module(tmp_path: Path, main: str) -> Path:
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "versions.tf").write_text(VERSIONS)
    (folder / "main.tf").write_text(main)
    return folder


def test_checker_accepts_known_arguments_blocks_and_meta_arguments(tmp_path: Path) -> None:
    main = """
resource "kubernetes_job" "run" {
  count               = 1
  wait_for_completion = false
  metadata {
    name   = "a"
    labels = { a = "b" }
  }
  spec {
    container {
      name = "c"
      dynamic "env" {
        for_each = { A = "1" }
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }
  lifecycle {
    ignore_changes = [metadata]
  }
}
"""
    assert sc.check_module(_module(tmp_path, main), {"hashicorp/kubernetes": KUBE}) == []


def test_checker_reports_every_unknown_argument_and_block(tmp_path: Path) -> None:
    main = """
resource "kubernetes_job" "run" {
  typo_argument = 1
  metadata {
    name      = "a"
    namespace = "not-in-schema"
  }
  spec {
    container {
      name = "c"
      dynamic "volume_mount" {
        for_each = []
        content {}
      }
      port {
        container_port = 80
      }
    }
  }
}
resource "kubernetes_secret" "s" {}
"""
    problems = sc.check_module(_module(tmp_path, main), {"hashicorp/kubernetes": KUBE})
    text = "\n".join(problems)
    assert "argument 'typo_argument' is not in the provider's schema" in text
    assert "kubernetes_job.run.metadata: argument 'namespace'" in text
    assert "kubernetes_job.run.spec.container: dynamic block 'volume_mount'" in text
    assert "kubernetes_job.run.spec.container: block 'port'" in text
    assert "'kubernetes_secret' is not among the resources of hashicorp/kubernetes 2.35.1" in text
    assert len(problems) == 5


def test_a_provider_without_schema_file_fails(tmp_path: Path) -> None:
    folder = _module(tmp_path, 'resource "kubernetes_job" "run" {}\nresource "runpod_pod" "p" {}\n')
    problems = sc.check_module(folder, {})
    assert any("no schema file for provider 'hashicorp/kubernetes'" in p for p in problems)
    assert any("provider 'runpod' is not in required_providers" in p for p in problems)


def test_unreadable_module_files_fail(tmp_path: Path) -> None:
    folder = _module(tmp_path, 'resource "x" {{{')
    assert "not parseable HCL" in sc.check_module(folder, {})[0]
    (folder / "main.tf").unlink()
    (folder / "main.tf.json").write_text("{}")
    assert "shipped modules are HCL" in sc.check_module(folder, {})[0]


def test_malformed_schema_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "b.json").write_text(json.dumps({**KUBE, "date": "last week"}))
    (tmp_path / "c.json").write_text(json.dumps(KUBE))
    schemas, problems = sc.load_schemas(tmp_path)
    assert list(schemas) == ["hashicorp/kubernetes"] and len(problems) == 2
