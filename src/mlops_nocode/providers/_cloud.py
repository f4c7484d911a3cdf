"""What the Terraform-backed cloud providers (exoscale, runpod) share: escaping user values for Terraform's
JSON syntax, the shipped modules, expected hours, target state, HTTP error mapping, and provisioning
through the one Terraform runner. Nothing here talks to a network at import time."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from pydantic_settings import BaseSettings

from mlops_nocode.providers.base import Bundle, Deployment, Offer, ProviderError, Provisioned, TargetState
from mlops_nocode.settings import is_loopback

TF_VARS = {"MLOPS_RUN_TOKEN": "run_token", "MLOPS_REPORT_TO": "report_to"}
"""Environment variable -> root variable: provision passes each as TF_VAR_<name> (the token is sensitive)."""

SOURCE_MODULES = Path(__file__).resolve().parents[3] / "deploy" / "terraform" / "modules"
PACKAGED_MODULES = Path(__file__).resolve().parents[1] / "_deploy" / "terraform" / "modules"
S = TypeVar("S", bound=BaseSettings)


def settings(cls: type[S], prefix: str) -> S:
    """`cls()` built once per value of the environment variables starting with `prefix` (building
    pydantic settings costs milliseconds, and render must stay fast)."""
    key = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith(prefix)))
    return cast(S, _settings(cls, key))


@functools.lru_cache(maxsize=64)
def _settings(cls: type[BaseSettings], key: tuple[tuple[str, str], ...]) -> BaseSettings:
    return cls()


def report_url() -> str:
    """The gateway URL Runners report to by default (GATEWAY_URL, else HOST and PORT)."""
    key = tuple(os.environ.get(n, os.environ.get(n.lower(), "")) for n in ("GATEWAY_URL", "HOST", "PORT"))
    return _report_url(key)


@functools.lru_cache(maxsize=16)
def _report_url(key: tuple[str, ...]) -> str:
    from mlops_nocode.settings import Settings

    return Settings().report_url


def platform_setting(name: str, default: str) -> str:
    """A field of the platform's Settings (e.g. `runner_image_cuda`), or `default` where this version
    has no such field; built once per value of its environment variable."""
    return _platform_setting(name, os.environ.get(name.upper(), os.environ.get(name, "")), default)


@functools.lru_cache(maxsize=16)
def _platform_setting(name: str, key: str, default: str) -> str:
    from mlops_nocode.settings import Settings

    return str(getattr(Settings(), name, default) or default)


def resource_name(deployment: Deployment) -> str:
    """A name unique per run for the cloud objects of a deployment (security group and SSH key names are
    unique per account): `mlops-<run id prefix>-<deployment>`, a DNS label of at most 63 characters."""
    run = re.sub(r"[^a-z0-9]+", "", deployment.run_id.lower())[:12] or "run"
    base = re.sub(r"[^a-z0-9-]+", "-", deployment.name.lower()).strip("-") or "deployment"
    return f"mlops-{run}-{base}"[:63].rstrip("-")


def modules_dir() -> Path:
    """deploy/terraform/modules: beside the source tree, or packaged in the wheel."""
    return SOURCE_MODULES if SOURCE_MODULES.is_dir() else PACKAGED_MODULES


def offers(provider: str) -> list[Offer]:
    """The offers of the price sheet in use, parsed once per version of the sheet file."""
    from mlops_nocode.providers.pricing import sheet_path

    path = sheet_path(provider)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return list(_offers(provider, str(path), stamp))


@functools.lru_cache(maxsize=16)
def _offers(provider: str, path: str, stamp: int) -> tuple[Offer, ...]:
    from mlops_nocode.providers.pricing import load_sheet

    return load_sheet(provider).offers


@functools.lru_cache(maxsize=8)
def module_files(provider: str) -> dict[str, str]:
    """The shipped module's files, as bundle entries under `modules/<provider>/` (the root module calls
    `./modules/<provider>`, so a bundle is self-contained and reviewable as it is)."""
    folder = modules_dir() / provider
    files = {
        f"modules/{provider}/{p.name}": p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.tf"))
    }
    if not files:
        raise ProviderError(
            f"the Terraform module for {provider} is missing ({folder})",
            str(folder),
            "reinstall mlops-nocode: its deploy/terraform/modules folder is incomplete",
        )
    return files


def expected_hours(deployment: Deployment) -> float | None:
    """Hours the deployment is expected to run: the target option `duration` (e.g. "90m", "2h", seconds),
    else the sum of its steps' timeouts when every step declares one; None otherwise."""
    from mlops_nocode.spec import parse_duration

    value = deployment.options.get("duration")
    if value is not None:
        try:
            return round(parse_duration(value) / 3600.0, 4)
        except (TypeError, ValueError) as e:
            raise ProviderError(
                f"target option duration {value!r} is not a duration ({e})",
                f"deployment {deployment.name} > target.options.duration",
                "give a duration such as 30m or 2h, or leave it out",
            ) from None
    if not deployment.steps or any(s.timeout is None for s in deployment.steps):
        return None
    return round(sum(float(s.timeout or 0) for s in deployment.steps) / 3600.0, 4)


def needs(deployment: Deployment) -> tuple[float, float, int]:
    """The largest CPU, memory (GiB) and GPU count any step of the deployment asks for."""
    from mlops_nocode.spec.values import memory_bytes

    cpu = max((float(s.resources.get("cpu", 1)) for s in deployment.steps), default=1.0)
    mem = max((memory_bytes(str(s.resources.get("memory", "512Mi"))) for s in deployment.steps), default=0)
    gpu = max((int(s.resources.get("gpu", 0)) for s in deployment.steps), default=0)
    return cpu, mem / 2**30, gpu


def cheapest_fit(provider: str, offers: list[Offer], deployment: Deployment) -> Offer:
    """The cheapest offer that fits every step of the deployment (used when placement chose none), or a
    ProviderError naming what the deployment needs and the nearest offers."""
    cpu, mem, gpu = needs(deployment)
    fits = [
        o
        for o in offers
        if o.vcpus >= cpu and o.memory_gib >= mem and o.gpu_count >= gpu and (gpu > 0 or o.gpu_count == 0)
    ]
    if fits:
        return min(fits, key=lambda o: (o.price_per_hour, o.id, o.region))
    nearest = sorted(
        offers,
        key=lambda o: (
            -min(o.vcpus / cpu, o.memory_gib / max(mem, 1e-9), (o.gpu_count / gpu) if gpu else 1.0, 1.0),
            o.price_per_hour,
        ),
    )
    names = ", ".join(
        f"{o.id} ({o.vcpus:g} vCPU, {o.memory_gib:g} GiB, {o.gpu_count} GPU)" for o in nearest[:3]
    )
    raise ProviderError(
        f"no {provider} offer fits deployment {deployment.name}: it needs {cpu:g} vCPU, {mem:.1f} GiB and "
        f"{gpu} GPU(s); nearest: {names or 'none'}",
        f"deployment {deployment.name} > resources",
        f"lower the steps' resources, or choose another target (`mlops targets` lists {provider}'s offers)",
    )


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


RUNNER_ENV_PREFIXES = ("ARTIFACT_STORE_",)
"""Environment the remote Runner gets through the sensitive map `secret_env` (the artifact store's
address and keys), taken from the provisioning environment."""


def hcl_string(value: str) -> str:
    """`value` as a quoted HCL string literal: quotes, backslashes and control characters escaped,
    `${` and `%{` made literal (TF_VAR_* values of complex types are parsed as HCL expressions)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out).replace("${", "$${").replace("%{", "%%{") + '"'


def hcl_map(values: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{hcl_string(k)} = {hcl_string(v)}" for k, v in sorted(values.items())) + "}"


def bundle_json(root: Mapping[str, Any]) -> str:
    return json.dumps(root, indent=2, sort_keys=False) + "\n"


def tf_env(bundle: Bundle, env: Mapping[str, str]) -> dict[str, str]:
    """The environment Terraform runs with: the caller's, plus TF_VAR_<name> for each secret the
    bundle declares (values never written anywhere: they live in this process's memory and the child's
    environment only), and TF_VAR_secret_env holding the ARTIFACT_STORE_* settings the remote Runner
    needs."""
    out = {k: v for k, v in env.items()}
    for name in bundle.env:
        tf_var = TF_VARS.get(name)
        if tf_var and env.get(name):
            out[f"TF_VAR_{tf_var}"] = env[name]
    runner = {k: v for k, v in env.items() if k.startswith(RUNNER_ENV_PREFIXES) and v}
    if runner:
        out["TF_VAR_secret_env"] = hcl_map(runner)
    out.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    return out


def provision(
    bundle: Bundle,
    workdir: Path,
    env: Mapping[str, str],
    handle_keys: tuple[str, ...],
) -> Provisioned:
    """Write the bundle into `workdir` and apply it (the runner destroys what it created on failure);
    `handle_keys` are the root outputs kept as the handle (instance id, pod id...). The gateway URL is
    MLOPS_REPORT_TO, else the bundle's `report_to` default (a literal value in Terraform JSON)."""
    from mlops_nocode.iac.terraform import TerraformRunner

    if not env.get("MLOPS_RUN_TOKEN"):
        raise ProviderError(
            "MLOPS_RUN_TOKEN is not set: the remote Runner needs it to report to the gateway",
            "environment",
            "provision through `mlops deploy` or the gateway, which set MLOPS_RUN_TOKEN for the run",
        )
    default = json.loads(bundle.files["main.tf.json"])["variable"]["report_to"]["default"]
    report_to = env.get("MLOPS_REPORT_TO") or str(default)
    host = urlsplit(report_to).hostname or ""
    if not host or is_loopback(host):
        raise ProviderError(
            f"the gateway URL {report_to!r} cannot be reached from a {bundle.provider} machine",
            "GATEWAY_URL",
            "set GATEWAY_URL (or MLOPS_REPORT_TO) to an address of the gateway the cloud can reach",
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


def check_started(what: str, provisioned: Provisioned, status: str) -> None:
    """Launch of a machine that starts its Runner itself: fail when `what` (its kind) is already gone."""
    if status in ("lost", "destroyed"):
        raise ProviderError(
            f"the {what} of {provisioned.deployment} is gone before the Runner started",
            f"deployment {provisioned.deployment}",
            "retry the run; `mlops destroy RUN` removes what remains",
            created=[r.get("address", r.get("type", "")) for r in provisioned.resources],
        )


def teardown(provisioned: Provisioned, env: Mapping[str, str]) -> None:
    """`terraform destroy` in the deployment's working directory; nothing to do without one."""
    from mlops_nocode.iac.terraform import TerraformRunner

    if not provisioned.workdir or not (Path(provisioned.workdir) / "main.tf.json").is_file():
        return
    TerraformRunner(Path(provisioned.workdir), env=dict(env)).destroy()


def http_error(
    provider: str, doing: str, status: int, message: str, where: str, secrets: tuple[str, ...] = ()
) -> ProviderError:
    """A provider API's refusal as a ProviderError saying what, where and how to fix it (any of
    `secrets` the server echoed is masked)."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
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
            f"raise the quota or balance in the {provider} console, or choose a smaller offer or "
            "another target",
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
