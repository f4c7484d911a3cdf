"""Render a Vast.ai deployment: the exact API requests that provisioning sends, as JSON, creating nothing.

No user-controlled string reaches a shell line: the start script is built from fixed text, names checked
against a strict pattern, and the plan as gzip+base64 (an alphabet with no shell meaning), each quoted
with shlex. User strings (step ids, parameters, labels) only land inside JSON strings, escaped by
`json.dumps`. Secret values are never rendered: the body's `env` holds a placeholder per variable that
provisioning replaces, by key, with the value from its environment.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_nocode.providers.base import Deployment, Offer, ProviderError
from mlops_nocode.providers.constraints import CONSTRAINT_KEYS
from mlops_nocode.providers.vastai_api import VastaiSettings
from mlops_nocode.spec.values import memory_bytes

API_DOCS = "https://docs.vast.ai/api-reference/"
RUNNER_ENV = ("MLOPS_RUN_TOKEN", "MLOPS_REPORT_TO")  # always passed: the run token and the gateway URL
PLAN_URL_ENV = "MLOPS_PLAN_URL"  # passed when the plan is too big to travel inline
# Passed on when set at provision time: the artifact store the remote Runner reads and writes.
STORE_ENV = ("MLOPS_ARTIFACT_STORE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")
ARGS_MAX = 4096  # combined length of args, args_str and onstart (API reference, x-input-validation)
LABEL_MAX = 256
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SAFE_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")
OPTIONS = {
    "gpu_name": "the Vast.ai GPU name to rent, as the marketplace spells it (e.g. 'RTX 4090')",
    "gpu_count": "GPUs per instance",
    "min_reliability": "lowest host reliability accepted, 0..1",
    "max_price": "highest price per hour accepted (USD, storage included)",
    "disk_gb": "disk of the instance in GB (8 or more)",
    "regions": "country codes the host may be in, e.g. ['US', 'CA']",
    "hours": "expected hours of the run, for the cost estimate",
    "interruptible": "not supported (see the provider's unsupported features)",
}
_START = """set -eu
dir="${{MLOPS_RUN_DIR:-/opt/mlops/run}}"
mkdir -p "$dir" && cd "$dir"
{fetch} > plan.json
exec mlops execute plan.json --report-to "$MLOPS_REPORT_TO"
"""
_INLINE = "python3 -c 'import base64,gzip,sys; sys.stdout.buffer.write(gzip.decompress(base64.b64decode(sys.argv[1])))' {b64}"  # noqa: E501
_BY_URL = "python3 -c 'import os,sys,urllib.request as u; sys.stdout.buffer.write(u.urlopen(os.environ[\"MLOPS_PLAN_URL\"]).read())'"  # noqa: E501


def placeholder(name: str) -> str:
    """What stands for a value that provisioning takes from its environment (never rendered)."""
    return f"<from the environment at provision time: {name}>"


@dataclass(frozen=True, slots=True)
class Needs:
    vcpus: float
    memory_gib: float
    gpus: int


def needs(deployment: Deployment) -> Needs:
    """The largest needs of the deployment's steps (one instance runs them one after another)."""
    cpu = max((float(s.resources.get("cpu", 1)) for s in deployment.steps), default=1.0)
    mem = max((memory_bytes(str(s.resources.get("memory", "0"))) for s in deployment.steps), default=0)
    gpu = max((int(s.resources.get("gpu", 0)) for s in deployment.steps), default=0)
    return Needs(cpu, mem / 2**30, gpu)


def _where(deployment: Deployment, key: str) -> str:
    src = deployment.steps[0].source if deployment.steps else deployment.name
    return f"{src} > target.options.{key}"


def options(deployment: Deployment, conf: VastaiSettings) -> dict[str, Any]:
    """The deployment's options checked and completed with defaults; ProviderError names a bad one."""
    opts = dict(deployment.options)
    for key in opts:
        if key not in OPTIONS and key not in CONSTRAINT_KEYS:  # constraints chose the offer already
            raise ProviderError(
                f"unknown Vast.ai option {key!r}",
                _where(deployment, key),
                f"use one of: {', '.join(sorted(OPTIONS))}",
            )
    if opts.get("interruptible"):
        raise ProviderError(
            "interruptible (bid) Vast.ai instances are not supported: a higher bid stops them at any time "
            "and the Runner cannot resume a step",
            _where(deployment, "interruptible"),
            "remove the option: on-demand offers are rented",
        )

    def number(key: str, default: float, low: float, high: float) -> float:
        value = opts.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ProviderError(
                f"Vast.ai option {key} must be a number from {low:g} to {high:g}, got {str(value)[:40]!r}",
                _where(deployment, key),
                f"set {key}: {OPTIONS[key]}",
            )
        return float(value)

    out: dict[str, Any] = {
        "min_reliability": number("min_reliability", conf.vastai_min_reliability, 0, 1),
        "disk_gb": number("disk_gb", conf.vastai_disk_gb, 8, 100_000),
        "max_price": number("max_price", 0, 0, 10_000) or None,
        "hours": number("hours", 0, 0, 100_000) or None,
    }
    gpu_name = opts.get("gpu_name")
    if gpu_name is not None and (
        not isinstance(gpu_name, str) or not re.fullmatch(r"[\w .+-]{1,64}", gpu_name)
    ):
        raise ProviderError(
            f"Vast.ai option gpu_name is not a GPU name: {str(gpu_name)[:40]!r}",
            _where(deployment, "gpu_name"),
            "use the marketplace's spelling, e.g. 'RTX 4090' or 'A100 SXM4'",
        )
    out["gpu_name"] = gpu_name
    out["gpu_count"] = int(number("gpu_count", 0, 0, 64)) or None
    regions = opts.get("regions", [])
    if not isinstance(regions, list) or not all(
        isinstance(r, str) and re.fullmatch(r"[A-Z]{2}", r) for r in regions
    ):
        raise ProviderError(
            "Vast.ai option regions must be a list of two-letter country codes",
            _where(deployment, "regions"),
            "e.g. regions: [US, CA, DE]",
        )
    out["regions"] = list(regions)
    return out


def search_query(n: Needs, offer: Offer | None, opts: Mapping[str, Any]) -> dict[str, Any]:
    """The offer search body (POST /api/v0/bundles/): the official client's default filters
    (vastai/api/offers.py search_offers) plus what the steps need, cheapest first."""
    q: dict[str, Any] = {
        "verified": {"eq": True},
        "external": {"eq": False},
        "rentable": {"eq": True},
        "rented": {"eq": False},
    }
    gpu_name = opts.get("gpu_name") or (offer.extra.get("vast_gpu_name") if offer else None)
    if gpu_name:
        q["gpu_name"] = {"eq": str(gpu_name)}
    count = opts.get("gpu_count") or (offer.gpu_count if offer else 0) or max(n.gpus, 1)
    q["num_gpus"] = {"eq": int(count)} if gpu_name else {"gte": int(count)}
    if offer and offer.gpu_memory_gib:
        q["gpu_ram"] = {"gte": round(offer.gpu_memory_gib * 1024)}  # MiB, as offers list it
    q["cpu_cores_effective"] = {"gte": n.vcpus}
    q["cpu_ram"] = {"gte": round(n.memory_gib * 1024)}  # MiB
    q["reliability"] = {"gte": opts["min_reliability"]}
    q["disk_space"] = {"gte": opts["disk_gb"]}
    if opts.get("max_price"):
        q["dph_total"] = {"lte": opts["max_price"]}
    if opts.get("regions"):
        q["geolocation"] = {"in": list(opts["regions"])}
    q.update(
        {
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "limit": 20,
            "allocated_storage": opts["disk_gb"],
        }
    )
    return q


def label(deployment: Deployment) -> str:
    """The instance label: letters, digits, '.', '_' and '-' only; finds the instance again."""
    text = SAFE_LABEL.sub("-", f"mlops-{deployment.run_id}-{deployment.name}").strip("-")
    return text[:LABEL_MAX]


def start_script(plan_text: str) -> tuple[str, bool]:
    """The shell script that starts the Runner, and whether the plan travels inline (else it is fetched
    from $MLOPS_PLAN_URL). Only the plan's gzip+base64 text varies, quoted."""
    b64 = base64.b64encode(gzip.compress(plan_text.encode("utf-8"), mtime=0)).decode("ascii")
    inline = _START.format(fetch=_INLINE.format(b64=shlex.quote(b64)))
    if len(inline) + 16 <= ARGS_MAX:  # 16: "sh", "-c" and the JSON array around them
        return inline, True
    return _START.format(fetch=_BY_URL), False


def env_names(deployment: Deployment, inline: bool) -> tuple[list[str], list[str]]:
    """(required, optional) environment variable names whose values provisioning passes on."""
    required = list(RUNNER_ENV) + ([] if inline else [PLAN_URL_ENV])
    secrets = sorted({name for s in deployment.steps for name in s.secrets})
    for name in secrets:
        if not ENV_NAME.fullmatch(name) or name in RUNNER_ENV or name == "VAST_API_KEY":
            raise ProviderError(
                f"secret name {name[:60]!r} cannot be passed to a Vast.ai instance",
                next(s.source for s in deployment.steps if name in s.secrets),
                "name secrets with letters, digits and '_' (not MLOPS_RUN_TOKEN or VAST_API_KEY)",
            )
    return required + secrets, list(STORE_ENV)


def create_body(
    image: str, script: str, disk_gb: float, the_label: str, names: Sequence[str]
) -> dict[str, Any]:
    """The create-instance body (PUT /api/v0/asks/{offer_id}/), as vastai/api/instances.py
    build_create_instance_payload shapes it; `entrypoint` + `args` (runtype "args") run the script, so
    the instance exits when the Runner ends."""
    return {
        "client_id": "me",
        "image": image,
        "env": {name: placeholder(name) for name in names},
        "disk": disk_gb,
        "label": the_label,
        "runtype": "args",
        "entrypoint": "sh",
        "args": ["-c", script],
        "target_state": "running",
        "cancel_unavail": True,
    }


def request_file(method: str, path: str, body: Any, note: str) -> str:
    """One API request as the bundle shows it (the key is a placeholder, never the value)."""
    doc = {
        "method": method,
        "url": "{VAST_URL}" + path,
        "headers": {"Authorization": "Bearer " + placeholder("VAST_API_KEY")},
        "body": body,
        "note": note,
        "reference": API_DOCS,
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
