"""Contract between the k3s renderer, the shipped Terraform modules and the hashicorp/kubernetes
provider's documented schema (deploy/terraform/schemas/kubernetes.json, built from the provider's docs
with scripts/build_tf_schema.py); and the modules checked with real terraform where it needs no provider."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from mlops_nocode.providers.k3s import PROVIDER
from mlops_nocode.providers.k3s_render import shipped_modules
from tests.providers.k3s_support import HOSTILE, deployment, step, terraform_binary

MODULES = shipped_modules()
SCHEMA = MODULES.parent / "schemas" / "kubernetes.json"
TF_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "TF_IN_AUTOMATION": "1"}


def _unquote(s: str) -> str:
    return s[1:-1] if s.startswith('"') and s.endswith('"') else s


def _variables(module: str) -> dict[str, dict[str, Any]]:
    with open(MODULES / module / "variables.tf", encoding="utf-8") as f:
        parsed = hcl2.load(f)
    return {_unquote(k): v for block in parsed["variable"] for k, v in block.items()}


def test_schema_file_names_its_source_and_date() -> None:
    data = json.loads(SCHEMA.read_text())
    assert data["provider"] == "hashicorp/kubernetes" and data["source"].startswith("https://github.com/")
    assert data["date"] and data["version"]


def test_every_argument_and_block_the_module_uses_is_documented() -> None:
    """The generic checker (tests/iac/schema_check.py) on the k3s module, which uses every resource type
    of the schema file."""
    from tests.iac import schema_check

    schemas, problems = schema_check.load_schemas()
    assert problems == [] and schema_check.check_module(MODULES / "k3s", schemas) == []
    used = set()
    for tf in sorted((MODULES / "k3s").glob("*.tf")):
        with open(tf, encoding="utf-8") as f:
            used |= {_unquote(t) for group in hcl2.load(f).get("resource", []) for t in group}
    assert used == set(json.loads(SCHEMA.read_text())["resources"])


@pytest.mark.parametrize("port,secrets", [(0, ()), (8080, ("HF_TOKEN", "OTHER"))])
def test_renderer_passes_only_declared_variables_and_every_required_one(
    port: int, secrets: tuple[str, ...]
) -> None:
    variables = _variables("k3s")
    required = {k for k, v in variables.items() if "default" not in v}
    run = json.loads(
        PROVIDER.render(deployment([step(secrets=secrets)], {"port": port})).files["main.tf.json"]
    )
    args = set(run["module"]["run"]) - {"source"}
    assert args <= set(variables), f"not declared in variables.tf: {args - set(variables)}"
    assert required <= args, f"required but not passed: {required - args}"


def test_modules_are_terraform_fmt_clean() -> None:
    tf = terraform_binary()
    for module in ("k3s", "k3s-node"):
        r = subprocess.run(
            [tf, "fmt", "-check", "-diff", "-recursive", str(MODULES / module)],
            capture_output=True,
            text=True,
            env=TF_ENV,
        )
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("runtime", ["python", "container"])
def test_rendered_root_module_validates_against_the_module_variables(tmp_path: Path, runtime: str) -> None:
    """Real `terraform validate` of the rendered main.tf.json, the kubernetes module swapped for a stub
    holding the real variables.tf (providers cannot be downloaded here): wrong or missing arguments,
    bad JSON syntax and misuse of the ephemeral run token fail here. A container step adds the step-Job
    arguments (step_jobs, work_volume_size, storage_class)."""
    tf = terraform_binary()
    config = {"image": "x:1"} if runtime == "container" else None
    s = step(secrets=("HF_TOKEN",), runtime=runtime, config=config)
    b = PROVIDER.render(deployment([s], {"port": 8080, "storage_class": "local-path"}))
    assert ("step_jobs" in json.loads(b.files["main.tf.json"])["module"]["run"]) == (runtime == "container")
    b.write(tmp_path)
    root = json.loads((tmp_path / "main.tf.json").read_text())
    del root["provider"], root["terraform"]["required_providers"]
    (tmp_path / "main.tf.json").write_text(json.dumps(root))
    stub = tmp_path / "modules" / "k3s"
    for f in stub.glob("*.tf"):
        if f.name != "variables.tf":
            f.unlink()
    (stub / "outputs.tf").write_text(
        "".join(f'output "{o}" {{\n  value = null\n}}\n' for o in ("namespace", "job", "service"))
    )
    env = {**TF_ENV, "HOME": str(tmp_path)}
    subprocess.run(
        [tf, "init", "-input=false", "-backend=false"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    r = subprocess.run([tf, "validate", "-json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert json.loads(r.stdout)["valid"] is True, r.stdout


def test_k3s_node_cloud_init_keeps_hostile_values_in_their_strings(tmp_path: Path) -> None:
    """The node module (provider-free) validated and applied for real: hostile labels and token come
    out of yamlencode as the same strings, and every command is in exec form."""
    tf = terraform_binary()
    work = tmp_path / "node"
    shutil.copytree(MODULES / "k3s-node", work)
    labels = {f"example.com/l{i}": h for i, h in enumerate(HOSTILE)}
    token = "tok'\"$(id)\n${x}%{y}"
    (work / "terraform.tfvars.json").write_text(
        json.dumps({"node_labels": labels, "gpu": True, "nvidia_device_plugin_version": "0.17.0"})
    )
    env = {**TF_ENV, "HOME": str(tmp_path), "TF_VAR_token": token}
    for cmd in (["init", "-input=false"], ["validate"], ["apply", "-auto-approve", "-input=false"]):
        r = subprocess.run([tf, *cmd], cwd=work, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    out = subprocess.run(
        [tf, "output", "-raw", "cloud_init"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.startswith("#cloud-config\n")
    doc = yaml.safe_load(out)
    config = yaml.safe_load(
        next(f for f in doc["write_files"] if f["path"].endswith("config.yaml"))["content"]
    )
    assert config["token"] == token and config["default-runtime"] == "nvidia"
    assert sorted(config["node-label"]) == sorted(f"{k}={v}" for k, v in labels.items())
    assert all(isinstance(c, list) for c in doc["runcmd"])
    assert [
        "env",
        "INSTALL_K3S_VERSION=v1.31.4+k3s1",
        "INSTALL_K3S_EXEC=server",
        "sh",
        "/tmp/k3s-install.sh",
    ] in doc["runcmd"]
    bad = subprocess.run(
        [tf, "plan", "-input=false", "-var", "k3s_version=latest; curl x|sh"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "K3s version" in bad.stdout + bad.stderr
