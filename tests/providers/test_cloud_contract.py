"""Contract tests of the exoscale and runpod Terraform modules (python-hcl2, terraform fmt):

- every variable the renderer passes to a module exists in its variables.tf, and every variable without
  a default is passed;
- every resource/data argument and nested block the modules use is in the provider's documented schema
  (deploy/terraform/schemas/<provider>.json, built from the providers' published docs/source);
- the modules are `terraform fmt` clean, and each has a README, versions.tf pinning its provider.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from mlops_nocode.providers import exoscale, runpod
from tests.providers.cloud_support import deployment, step

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "deploy" / "terraform" / "modules"
SCHEMAS = ROOT / "deploy" / "terraform" / "schemas"
META = {"count", "for_each", "depends_on", "lifecycle", "provider"}
PROVIDERS = {"exoscale": exoscale.PROVIDER, "runpod": runpod.PROVIDER}


def _label(key: str) -> str:
    return key.strip('"')


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return dict(hcl2.load(f))


def _variables(name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in _load(MODULES / name / "variables.tf").get("variable", []):
        for k, v in entry.items():
            found[_label(k)] = v
    return found


def _passed(name: str) -> set[str]:
    gpu = step("train/fit", resources={"cpu": 1, "memory": "1Gi", "gpu": 1})
    bundle = PROVIDERS[name].render(deployment(name, steps=(gpu,)))
    module = json.loads(bundle.files["main.tf.json"])["module"]["runner"]
    return {k for k in module if k not in {"source", "version", *META}}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_renderer_passes_only_declared_variables_and_all_required(name: str) -> None:
    declared = _variables(name)
    passed = _passed(name)
    assert passed - set(declared) == set(), f"passed but not declared in {name}/variables.tf"
    required = {k for k, v in declared.items() if "default" not in v}
    assert required - passed == set(), f"required by {name}/variables.tf but not passed"


def _check_body(body: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    wrong = []
    for key, value in body.items():
        if key == "__is_block__" or key in META:
            continue
        if (
            isinstance(value, list)
            and value
            and all(isinstance(b, dict) and b.get("__is_block__") for b in value)
        ):
            if key not in schema.get("blocks", {}):
                wrong.append(f"{where}: block {key!r} is not in the schema")
                continue
            for b in value:
                wrong += _check_body(b, schema["blocks"][key], f"{where}.{key}")
        elif key not in schema.get("arguments", []):
            wrong.append(f"{where}: argument {key!r} is not in the schema")
    return wrong


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_module_uses_only_documented_arguments_and_blocks(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    assert (
        schema["provider"] == f"{name}/{name}" and schema["source"].startswith("https://") and schema["date"]
    )
    main = _load(MODULES / name / "main.tf")
    wrong, used = [], 0
    for kind, table in (("resource", "resources"), ("data", "data_sources")):
        for entry in main.get(kind, []):
            for rtype, named in entry.items():
                rtype = _label(rtype)
                for rname, body in named.items():
                    where = f"{kind} {rtype}.{_label(rname)}"
                    if rtype not in schema.get(table, {}):
                        wrong.append(f"{where}: not in the schema")
                        continue
                    used += 1
                    wrong += _check_body(body, schema[table][rtype], where)
    assert used > 0
    assert wrong == []


def test_contract_check_catches_an_undocumented_argument() -> None:
    schema = {"arguments": ["name"], "blocks": {"timeouts": {"arguments": ["create"], "blocks": {}}}}
    body = {"name": "x", "colour": "red", "timeouts": [{"create": "1m", "read": "1m", "__is_block__": True}]}
    assert _check_body(body, schema, "r") == [
        "r: argument 'colour' is not in the schema",
        "r.timeouts: argument 'read' is not in the schema",
    ]


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_module_files_readme_and_pinned_provider(name: str) -> None:
    folder = MODULES / name
    for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (folder / f).is_file(), f
    pinned = _load(folder / "versions.tf")["terraform"][0]["required_providers"][0][name]
    versions = {k: pinned[k].strip('"') for k in ("source", "version")}
    assert versions["source"] == f"{name}/{name}" and versions["version"].startswith("~>")
    # the root module the renderer writes pins the same provider
    root = json.loads(
        PROVIDERS[name]
        .render(deployment(name, steps=(step("a", resources={"gpu": 1}),)))
        .files["main.tf.json"]
    )
    assert root["terraform"]["required_providers"][name] == {
        "source": versions["source"],
        "version": versions["version"],
    }


def test_modules_are_terraform_fmt_clean() -> None:
    binary = shutil.which("terraform") or shutil.which("tofu")
    assert binary, "terraform (or tofu) is needed for this check: install it (CI installs it)"
    for name in PROVIDERS:
        done = subprocess.run(
            [binary, "fmt", "-check", "-diff", str(MODULES / name)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
