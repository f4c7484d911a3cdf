"""What the Terraform-backed cloud providers (exoscale, runpod) share: escaping user values for Terraform's
JSON syntax, the shipped modules, expected hours, target state, HTTP error mapping, and provisioning
through the one Terraform runner. Nothing here talks to a network at import time."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.providers.base import Bundle, Deployment, Provisioned, ProviderError, TargetState

SECRET_TF_VARS = {"MLOPS_RUN_TOKEN": "run_token"}
"""Environment variable -> sensitive root variable: provision passes each as TF_VAR_<name>."""

SOURCE_MODULES = Path(__file__).resolve().parents[3] / "deploy" / "terraform" / "modules"
PACKAGED_MODULES = Path(__file__).resolve().parents[1] / "_deploy" / "terraform" / "modules"


def tf_escape(value: Any) -> Any:
    """`value` with every string (and object key) made literal for Terraform: in `main.tf.json` every
    string is a template, so `${` and `%{` in user text would be evaluated; `$${` and `%%{` are their
    literal forms. JSON encoding then takes care of quotes, backslashes and newlines."""
    if isinstance(value, str):
        return value.replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, Mapping):
        return {tf_escape(str(k)): tf_escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [tf_escape(v) for v in value]
    return value


def modules_dir() -> Path:
    """deploy/terraform/modules: beside the source tree, or packaged in the wheel."""
    return SOURCE_MODULES if SOURCE_MODULES.is_dir() else PACKAGED_MODULES


def module_files(provider: str) -> dict[str, str]:
    """The shipped module's files, as bundle entries under `modules/<provider>/` (the root module calls
    `./modules/<provider>`, so a bundle is self-contained and reviewable as it is)."""
    folder = modules_dir() / provider
    files = {f"modules/{provider}/{p.name}": p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.tf"))}
    if not files:
        raise ProviderError(
            f"the Terraform module for {provider} is missing ({folder})",
            str(folder),
            "reinstall mlops-nocode: its deploy/terraform/modules folder is incomplete",
        )
    return files


def expected_hours(deployment: Deployment) -> float | None:
    """Hours the deployment is expected to run: the target option `duration` (e.g. "90m", "2h", seconds)
    of the deployment, else the sum of its steps' own `duration` options; None when none declares one."""
    from mlops_nocode.spec import parse_duration

    def hours(value: Any, where: str) -> float:
        try:
            seconds = parse_duration(value)
        except (TypeError, ValueError) as e:
            raise ProviderError(
                f"target option duration {value!r} is not a duration ({e})",
                where,
                "give a duration such as 30m or 2h, or leave it out",
            ) from None
        return seconds / 3600.0

    if deployment.options.get("duration") is not None:
        return round(hours(deployment.options["duration"], "target.options.duration"), 4)
    per_step = [
        hours(s.target["options"]["duration"], f"{s.source} > target.options.duration")
        for s in deployment.steps
        if isinstance(s.target.get("options"), Mapping) and s.target["options"].get("duration") is not None
    ]
    return round(sum(per_step), 4) if per_step else None


def terraform_binary(env: Mapping[str, str]) -> str | None:
    from mlops_nocode.iac.terraform import TerraformRunner

    return TerraformRunner.find_binary(env)


def target_state(provider: str, env: Mapping[str, str], credentials: tuple[str, ...]) -> TargetState:
    """Credentials named in `credentials` present in `env`, and terraform/tofu present."""
    missing = [name for name in credentials if not env.get(name)]
    binary = terraform_binary(env)
    notes = []
    if binary is None:
        missing.append("terraform or tofu (install one: https://developer.hashicorp.com/terraform/install)")
        notes.append("plans still render without terraform; provisioning needs it")
    return TargetState(
        provider=provider,
        credentials=not any(name in credentials for name in missing),
        missing=tuple(missing),
        tools={"terraform": binary},
        notes=tuple(notes),
    )


def bundle_json(root: Mapping[str, Any]) -> str:
    return json.dumps(root, indent=2, sort_keys=False) + "\n"


def tf_env(bundle: Bundle, env: Mapping[str, str]) -> dict[str, str]:
    """The environment Terraform runs with: the caller's, plus TF_VAR_<name> for each secret the
    bundle declares (values never written anywhere: they live in this process's memory and the child's
    environment only)."""
    out = {k: v for k, v in env.items()}
    for name in bundle.env:
        tf_var = SECRET_TF_VARS.get(name)
        if tf_var and env.get(name):
            out[f"TF_VAR_{tf_var}"] = env[name]
    out.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    return out


def provision(bundle: Bundle, workdir: Path, env: Mapping[str, str], handle_keys: tuple[str, ...]) -> Provisioned:
    """Write the bundle into `workdir` and apply it (the runner destroys what it created on failure);
    `handle_keys` are the root outputs kept as the handle (instance id, pod id...)."""
    from mlops_nocode.iac.terraform import TerraformRunner

    for name in bundle.env:
        if name in SECRET_TF_VARS and not env.get(name):
            raise ProviderError(
                f"{name} is not set: the remote Runner needs it to report to the gateway",
                "environment",
                f"provision through `mlops deploy` or the gateway, which set {name} for the run",
            )
    bundle.write(workdir)
    runner = TerraformRunner(workdir, env=tf_env(bundle, env))
    runner.init()
    outputs = runner.apply()
    handle = {k: _output_value(outputs.get(k)) for k in handle_keys}
    return Provisioned(
        deployment=bundle.deployment,
        provider=bundle.provider,
        resources=tuple(runner.resources()),
        workdir=str(workdir),
        handle=handle,
    )


def _output_value(out: Any) -> Any:
    return out.get("value") if isinstance(out, Mapping) and "value" in out else out


def teardown(provisioned: Provisioned, env: Mapping[str, str]) -> None:
    """`terraform destroy` in the deployment's working directory; nothing to do without one."""
    from mlops_nocode.iac.terraform import TerraformRunner

    if not provisioned.workdir or not (Path(provisioned.workdir) / "main.tf.json").is_file():
        return
    TerraformRunner(Path(provisioned.workdir), env=dict(env)).destroy()


def http_error(provider: str, doing: str, status: int, message: str, where: str) -> ProviderError:
    """A provider API's refusal as a ProviderError saying what, where and how to fix it."""
    text = message.strip()[:300] or f"HTTP {status}"
    low = text.lower()
    if status in (401, 403) and "quota" not in low and "limit" not in low:
        cred = "EXOSCALE_API_KEY and EXOSCALE_API_SECRET" if provider == "exoscale" else "RUNPOD_API_KEY"
        return ProviderError(
            f"{provider} refused the credentials while {doing}: {text}",
            where,
            f"check {cred} (a valid key with the rights to {doing})",
        )
    if status == 429 or "quota" in low or "limit" in low or "insufficient" in low or "balance" in low:
        return ProviderError(
            f"{provider} quota or limit reached while {doing}: {text}",
            where,
            f"raise the quota or balance in the {provider} console, or choose a smaller offer or another target",
        )
    if status == 404:
        return ProviderError(
            f"{provider} no longer knows the resource while {doing} (it was lost or destroyed): {text}",
            where,
            "the run failed on a lost instance; run `mlops destroy RUN` to clean up what remains, then retry",
        )
    return ProviderError(
        f"{provider} answered HTTP {status} while {doing}: {text}",
        where,
        "retry later; if it persists, check the provider's status page",
    )
