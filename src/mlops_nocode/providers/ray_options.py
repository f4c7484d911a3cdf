"""The `ray` target's options, checked at plan time, and whether a step fits a node of the cluster.

| option | value | meaning |
|---|---|---|
| `address` | `host:port`, `ray://host:port` or `auto` | the cluster (default: RAY_ADDRESS) |
| `strategy` | `DEFAULT` (pack) or `SPREAD` | Ray's scheduling strategy for the step's tasks |
| `node_labels` | `{label: value}` | only nodes with these labels (`ray start --labels`) |
| `node_id` / `node_ip` | a node id (56 hex digits) / an IP | pin the steps to one node |
| `soft` | true / false | a pin that may fall back to another node |
| `storage` | `shared` (this version's executor) | how artifacts move between nodes |
| `submit` | `driver` (default) or `job` | who drives the run: this Runner, or a Ray Job |
| `dashboard` | `http(s)://host:port` | the dashboard's URL, for `submit: job` |

The constraint options every target takes (`min_vcpus`, `gpu_type`, ...: providers/constraints.py) are
accepted too; any other option is refused, with the list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from mlops_nocode.providers.constraints import CONSTRAINT_KEYS
from mlops_nocode.runtime.executors.ray import STORAGE as EXECUTOR_STORAGE
from mlops_nocode.runtime.gpus import gpu_matches
from mlops_nocode.spec.values import memory_bytes

OPTIONS: dict[str, str] = {
    "address": "the cluster's address (host:port, ray://host:port or auto); default RAY_ADDRESS",
    "strategy": "DEFAULT (pack) or SPREAD",
    "node_labels": "{label: value}: only nodes with these labels",
    "node_id": "pin the steps to the node with this id (56 hex digits, `ray list nodes`)",
    "node_ip": "pin the steps to the node with this IP address",
    "soft": "true: a pinned step may run elsewhere when its node cannot take it",
    "storage": "how artifacts move between nodes: shared (every node sees MLOPS_HOME at the same path)",
    "submit": "driver (this Runner submits each step) or job (the run is submitted as a Ray Job)",
    "dashboard": "the dashboard's URL for submit: job (default: http://<address host>:8265)",
    "kuberay": "{...}: also render a KubeRay RayCluster sized for the steps (docs/RAY.md, KubeRay)",
}
CONSTRAINTS = CONSTRAINT_KEYS
STRATEGIES = ("DEFAULT", "SPREAD")
STORAGE: tuple[str, ...] = EXECUTOR_STORAGE  # what the executor of this version moves artifacts with
SUBMIT = ("driver", "job")
DASHBOARD_PORT = 8265

_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):\d{1,5}$")
_URL = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252})(:\d{1,5})?/?$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_./-]{0,251}[A-Za-z0-9])?$")
_NODE_ID = re.compile(r"^[0-9a-f]{56}$")

# (what, option or "" for the target, fix)
Found = tuple[str, str, str]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def valid_address(value: str) -> bool:
    """A cluster address Ray's tools accept: `host:port`, `ray://host:port` or `auto`."""
    return value == "auto" or bool(_ADDRESS.match(value) and 0 < int(value.rsplit(":", 1)[1]) < 65536)


def option_problems(options: Mapping[str, Any]) -> list[Found]:
    """What is wrong with a ray target's options (empty when nothing is)."""
    out: list[Found] = []
    for key in options:
        if key not in OPTIONS and key not in CONSTRAINTS:
            known = ", ".join([*OPTIONS, *sorted(CONSTRAINTS)])
            out.append(("is not an option of the ray target", key, f"use one of: {known}"))
    addr = options.get("address")
    if addr is not None and not (isinstance(addr, str) and valid_address(addr.strip())):
        out.append(
            (f"is {_show(addr)}", "address", "give host:port (e.g. 10.0.0.5:6379), ray://host:port or auto")
        )
    for key, allowed in (("strategy", STRATEGIES), ("storage", STORAGE), ("submit", SUBMIT)):
        value = options.get(key)
        if value is None:
            continue
        norm = value.upper() if isinstance(value, str) and key == "strategy" else value
        if norm not in allowed:
            out.append((f"is {_show(value)}", key, f"use one of: {', '.join(allowed)}"))
    labels = options.get("node_labels")
    if labels is not None and not (
        isinstance(labels, dict)
        and 0 < len(labels) <= 32
        and all(isinstance(k, str) and _LABEL.match(k) for k in labels)
        and all(isinstance(v, str) and (v == "" or _LABEL.match(v)) for v in labels.values())
    ):
        fix = "give {label: value} pairs of letters, digits, '_', '.', '/', '-' (at most 32)"
        out.append((f"is {_show(labels)}", "node_labels", fix))
    node_id = options.get("node_id")
    if node_id is not None and not (isinstance(node_id, str) and _NODE_ID.match(node_id)):
        out.append(
            (f"is {_show(node_id)}", "node_id", "give a node id as `ray list nodes` shows it (56 hex digits)")
        )
    node_ip = options.get("node_ip")
    if node_ip is not None and not _is_ip(node_ip):
        out.append((f"is {_show(node_ip)}", "node_ip", "give the node's IP address (e.g. 10.0.0.7)"))
    if "node_id" in options and "node_ip" in options:
        out.append(("and node_ip both pin the steps", "node_id", "keep one of node_id and node_ip"))
    soft = options.get("soft")
    if soft is not None and not isinstance(soft, bool):
        out.append((f"is {_show(soft)}", "soft", "give true or false"))
    dash = options.get("dashboard")
    if dash is not None and not (isinstance(dash, str) and _URL.match(dash.strip())):
        out.append((f"is {_show(dash)}", "dashboard", "give the dashboard's URL, e.g. http://10.0.0.5:8265"))
    return out


def _is_ip(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 45:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def dashboard_url(options: Mapping[str, Any], address: str) -> str:
    """Where the cluster's job API answers: `dashboard`, else RAY_ADDRESS when it is an http URL (as `ray
    job submit` reads it), else port 8265 on the address's host."""
    given = options.get("dashboard")
    if isinstance(given, str) and given.strip():
        return given.strip().rstrip("/")
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    host = address.removeprefix("ray://").rsplit(":", 1)[0] or "127.0.0.1"
    host = "127.0.0.1" if host == "auto" else host
    return f"http://{host}:{DASHBOARD_PORT}"


# -- nodes --------------------------------------------------------------------------------------------
def node_facts(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One live node of `ray.nodes()` as the offer's `extra.nodes` keeps it."""
    res = {str(k): float(v) for k, v in dict(raw.get("Resources") or {}).items()}
    gpu_types = sorted(k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:"))
    skip = {"CPU", "GPU", "memory", "object_store_memory"}
    custom = {
        k: v for k, v in res.items() if k not in skip and not k.startswith(("node:", "accelerator_type:"))
    }
    return {
        "id": str(raw.get("NodeID", "")),
        "ip": str(raw.get("NodeManagerAddress", "")),
        "hostname": str(raw.get("NodeManagerHostname", "")),
        "cpu": res.get("CPU", 0.0),
        "memory_gib": round(res.get("memory", 0.0) / 2**30, 3),
        "gpu": int(res.get("GPU", 0.0)),
        "gpu_type": gpu_types[0] if gpu_types else "",
        "custom": custom,
        "labels": {str(k): str(v) for k, v in dict(raw.get("Labels") or {}).items()},
    }


def node_text(n: Mapping[str, Any]) -> str:
    parts = [f"CPU={n.get('cpu', 0):g}", f"memory={n.get('memory_gib', 0):g}Gi"]
    if n.get("gpu"):
        parts.append(f"GPU={n['gpu']}" + (f" ({n['gpu_type']})" if n.get("gpu_type") else ""))
    parts += [f"{k}={v:g}" for k, v in sorted(dict(n.get("custom") or {}).items())]
    return f"{n.get('ip', '?')} ({str(n.get('id', '?'))[:12]}): {', '.join(parts)}"


def demand_text(resources: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    parts = [f"CPU={float(resources.get('cpu', 1)):g}"]
    if resources.get("memory"):
        parts.append(f"memory={resources['memory']}")
    if resources.get("gpu"):
        gpu_type = resources.get("gpu_type") or options.get("gpu_type")
        parts.append(f"GPU={resources['gpu']}" + (f" ({gpu_type})" if gpu_type else ""))
    parts += [f"{k}={float(v):g}" for k, v in sorted(dict(resources.get("custom") or {}).items())]
    if options.get("node_labels"):
        parts.append(f"labels {dict(options['node_labels'])}")
    if options.get("node_id") or options.get("node_ip"):
        parts.append(f"on node {options.get('node_id') or options.get('node_ip')}")
    return ", ".join(parts)


def fits(node: Mapping[str, Any], resources: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
    """Whether `node` (node_facts) could ever run a step with these resources and options."""
    if float(node.get("cpu", 0)) < float(resources.get("cpu", 1)):
        return False
    if node.get("memory_gib", 0) * 2**30 < memory_bytes(str(resources.get("memory") or "0")) - 1:
        return False
    gpus = int(resources.get("gpu", 0) or 0)
    if int(node.get("gpu", 0)) < gpus:
        return False
    want = resources.get("gpu_type") or (options.get("gpu_type") if gpus else None)
    if gpus and isinstance(want, str) and not gpu_matches(str(node.get("gpu_type", "")), want):
        return False
    have = dict(node.get("custom") or {})
    if any(float(have.get(k, 0.0)) < float(v) for k, v in dict(resources.get("custom") or {}).items()):
        return False
    labels = dict(node.get("labels") or {})
    if any(labels.get(k) != v for k, v in dict(options.get("node_labels") or {}).items()):
        return False
    if options.get("node_id") and not options.get("soft") and node.get("id") != options["node_id"]:
        return False
    return not (options.get("node_ip") and not options.get("soft") and node.get("ip") != options["node_ip"])
