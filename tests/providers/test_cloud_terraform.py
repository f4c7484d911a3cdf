"""The exoscale and runpod bundles evaluated by real Terraform (no provider needed): the rendered root
module's values go through the real module variables (types, validations) and the module's own locals
(the cloud-init document, the pod environment), and come back exactly as given: hostile text never
escapes its string, the run token reaches the machine only through the sensitive variable."""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mlops_nocode.providers import _cloud, exoscale, runpod
from mlops_nocode.providers.base import Bundle
from tests.providers.cloud_support import HOSTILE, deployment, step

MODULES = Path(__file__).resolve().parents[2] / "deploy" / "terraform" / "modules"
TOKEN = "tok-" + "s3cr3t" * 4
NASTY = HOSTILE + '\b\f\x01\x7f\\${x}\\"é😀 "quoted" %%{ end }'
STORE = {"ARTIFACT_STORE_URL": "s3://bucket/prefix", "ARTIFACT_STORE_SECRET_KEY": NASTY}

EVAL_OUTPUTS = {
    "exoscale": """
output "user_data" {
  value     = "#cloud-config\\n${yamlencode(local.cloud_config)}"
  sensitive = true
}
output "vars" {
  value = { name = var.name, zone = var.zone, template = var.template_name, key = var.ssh_public_key,
    image = var.runner_image, labels = var.labels, report_to = var.report_to }
}
""",
    "runpod": """
output "env" {
  value     = local.env
  sensitive = true
}
output "start" { value = local.start_command }
output "vars" { value = { name = var.name, gpu = var.gpu_type_id, image = var.image, ports = var.ports } }
""",
}


def _terraform() -> str:
    binary = shutil.which("terraform") or shutil.which("tofu")
    assert binary, "terraform (or tofu) is needed for this check: install it (CI installs it)"
    return binary


def _evaluate(provider: str, bundle: Bundle, tmp: Path) -> dict[str, Any]:
    """Apply the bundle with the module's resources replaced by outputs of its locals and variables."""
    module_text = (MODULES / provider / "main.tf").read_text(encoding="utf-8")
    first_resource = min(
        i for i in (module_text.find('\ndata "'), module_text.find('\nresource "')) if i >= 0
    )
    evalmod = tmp / "modules" / provider
    evalmod.mkdir(parents=True)
    (evalmod / "variables.tf").write_text((MODULES / provider / "variables.tf").read_text(encoding="utf-8"))
    (evalmod / "main.tf").write_text(module_text[:first_resource] + EVAL_OUTPUTS[provider])
    root = json.loads(bundle.files["main.tf.json"])
    root.pop("provider")
    root.pop("terraform")
    root["output"] = {
        k: {"value": f"${{module.runner.{k}}}", "sensitive": True} for k in ("vars", *_outs(provider))
    }
    (tmp / "main.tf.json").write_text(json.dumps(root))
    given = {
        **os.environ,
        "MLOPS_RUN_TOKEN": TOKEN,
        **STORE,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    env = _cloud.tf_env(bundle, given)  # how provision passes secrets: TF_VAR_run_token, TF_VAR_secret_env
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        done = subprocess.run(
            [_terraform(), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert TOKEN not in done.stdout + done.stderr
    out = subprocess.run(
        [_terraform(), "output", "-json"], cwd=tmp, env=env, capture_output=True, text=True, check=True
    )
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


def _outs(provider: str) -> tuple[str, ...]:
    return ("user_data",) if provider == "exoscale" else ("env", "start")


def _hostile_step() -> Any:
    return step(
        "train/fit", {"x": HOSTILE, HOSTILE: [HOSTILE]}, resources={"cpu": 2, "memory": "4Gi", "gpu": 1}
    )


def test_exoscale_cloud_init_carries_hostile_values_intact(tmp_path: Path) -> None:
    options = {"image": HOSTILE, "ssh_public_key": HOSTILE, "template": HOSTILE, "report_to": "x"}
    dep = deployment("exoscale", options=options, steps=(_hostile_step(),))
    bundle = exoscale.PROVIDER.render(dep)
    assert TOKEN not in json.dumps(bundle.to_json())
    got = _evaluate("exoscale", bundle, tmp_path)
    assert (
        got["vars"]["image"] == HOSTILE
        and got["vars"]["key"] == HOSTILE
        and got["vars"]["template"] == HOSTILE
    )
    assert got["vars"]["labels"] == {"mlops-run": "run-123", "mlops-deployment": "train-1"}
    user_data = got["user_data"]
    assert user_data.startswith("#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert set(doc) == {"write_files", "runcmd"}
    files = {f["path"]: f for f in doc["write_files"]}
    plan = json.loads(gzip.decompress(base64.b64decode(files["/opt/mlops/plan.json"]["content"])))
    assert plan == json.loads(json.dumps(dep.plan.to_json()))
    assert plan["steps"][0]["params"]["x"] == HOSTILE
    assert base64.b64decode(files["/etc/mlops/secret/MLOPS_RUN_TOKEN"]["content"]).decode() == TOKEN
    assert files["/etc/mlops/secret/MLOPS_RUN_TOKEN"]["permissions"] == "0600"
    assert base64.b64decode(files["/etc/mlops/env/MLOPS_RUNNER_IMAGE"]["content"]).decode() == HOSTILE
    assert base64.b64decode(files["/etc/mlops/env/MLOPS_GPU_DRIVER"]["content"]).decode() == "1"
    for name, value in STORE.items():
        assert base64.b64decode(files[f"/etc/mlops/secret/{name}"]["content"]).decode() == value
    assert set(files) == {
        "/opt/mlops/plan.json",
        "/opt/mlops/start.sh",
        "/etc/systemd/system/mlops-runner.service",
        "/etc/mlops/secret/MLOPS_RUN_TOKEN",
        *(f"/etc/mlops/secret/{n}" for n in STORE),
        *(
            f"/etc/mlops/env/{n}"
            for n in (
                "MLOPS_DEPLOYMENT",
                "MLOPS_GPU_DRIVER",
                "MLOPS_PIP_SPEC",
                "MLOPS_REPORT_TO",
                "MLOPS_RUNNER_IMAGE",
            )
        ),
    }
    script = base64.b64decode(files["/opt/mlops/start.sh"]["content"]).decode()
    assert "rm -rf" not in script and TOKEN not in script and "evil" not in script
    assert (
        'mlops execute /opt/mlops/plan.json --deployment "$MLOPS_DEPLOYMENT" --report-to "$MLOPS_REPORT_TO"'
        in script
    )
    # only the plan, script, unit and root-only env files are written; user text never is a YAML key
    assert "evil" not in "".join(str(k) for f in doc["write_files"] for k in f)


def test_runpod_environment_carries_hostile_values_intact(tmp_path: Path) -> None:
    dep = deployment("runpod", options={"image": HOSTILE, "ports": HOSTILE}, steps=(_hostile_step(),))
    bundle = runpod.PROVIDER.render(dep)
    assert TOKEN not in json.dumps(bundle.to_json())
    got = _evaluate("runpod", bundle, tmp_path)
    assert got["vars"]["image"] == HOSTILE and got["vars"]["ports"] == HOSTILE
    env = got["env"]
    assert env["MLOPS_RUN_TOKEN"] == TOKEN
    assert {k: env[k] for k in STORE} == STORE
    assert env["MLOPS_DEPLOYMENT"] == "train-1"
    plan = json.loads(base64.b64decode(env["MLOPS_PLAN_B64"]))
    assert plan["steps"][0]["params"]["x"] == HOSTILE
    start = got["start"]
    assert HOSTILE not in start and TOKEN not in start
    command = 'mlops execute /tmp/mlops-plan.json --deployment "$MLOPS_DEPLOYMENT" --report-to '
    assert command + '"$MLOPS_REPORT_TO" || code=$?' in start
    assert start.rstrip().endswith("exec sleep infinity")
