"""The driver's side of Ray: one connection per process, a step's task options, what the nodes offer.

Ray allows one `ray.init` per process: the first ray step connects this process to its target's cluster
(namespace `mlops`), and a later step whose target names another cluster fails with a clear message.
A cluster that cannot be reached fails the step at its start (with the address and the fix); so does a
step whose resources no node of the cluster offers (with what the nodes offer), instead of waiting
forever for a node that never comes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime.attempt import StepFailure
from mlops_nocode.spec.values import memory_bytes

NAMESPACE = "mlops"
NODES_TTL_S = 5.0
CONNECT_TIMEOUT_S = 3.0
STRATEGIES = ("DEFAULT", "SPREAD")

_lock = threading.Lock()
_connected: str | None = None
_nodes: tuple[float, list[dict[str, Any]]] = (0.0, [])


def options_of(step: PlanStep) -> dict[str, Any]:
    """The step's target options (address, strategy, pinning)."""
    target = step.target if isinstance(step.target, dict) else {}
    options = target.get("options") if target.get("provider") in ("ray", "auto", None) else None
    return dict(options) if isinstance(options, dict) else {}


def address_of(options: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """The cluster's address: the target's `address` option, else RAY_ADDRESS (as Ray's own tools)."""
    given = options.get("address")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return (os.environ if environ is None else environ).get("RAY_ADDRESS", "").strip()


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_only(host: str, port: int) -> bool:
    """Whether a cluster named by a loopback address listens on loopback only (nodes started with
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0), not on this machine's own address as Ray does by default."""
    if not _is_loopback(host):
        return False
    own = _own_ip()
    try:
        socket.create_connection((own, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return True
    return _is_loopback(own)


def _own_ip() -> str:
    """This machine's address as Ray picks it (the one its outgoing traffic uses); loopback if none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("8.8.8.8", 53))  # no packet is sent: this only picks the outgoing address
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def connect(address: str) -> None:
    """Connect this process to the cluster at `address` (once); StepFailure when it cannot."""
    global _connected
    if not address:
        raise StepFailure(
            "no Ray cluster is named: set RAY_ADDRESS (e.g. 10.0.0.5:6379) or the target's options.address"
        )
    with _lock:
        if _connected is None:
            _connected = _already_connected()
        if _connected is not None and _same_cluster(_connected, address):
            return
        if _connected is not None:
            raise StepFailure(
                f"this process is connected to the Ray cluster at {_connected} and the step's target "
                f"names {address}: one process drives one Ray cluster (Ray allows one connection per "
                "process); run the plans of the other cluster from another `mlops run` or worker"
            )
        hp = _host_port(address)
        if hp is not None:
            try:
                socket.create_connection(hp, timeout=CONNECT_TIMEOUT_S).close()
            except OSError as e:
                raise StepFailure(
                    f"the Ray cluster at {address} cannot be reached ({e.strerror or e}): start it (`ray "
                    "start --head`) or fix RAY_ADDRESS / the target's options.address"
                ) from None
        import ray

        kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
        if hp is not None and _loopback_only(*hp):
            # Ray replaces 127.0.0.1 by the machine's address unless told that the cluster is local
            # only (its documented switch for single-machine clusters): this driver stays on loopback too
            import ray._private.ray_constants as ray_constants

            ray_constants.ENABLE_RAY_CLUSTER = False
            kwargs["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(address=address, **kwargs)
        except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError... by version
            raise StepFailure(
                f"cannot connect to the Ray cluster at {address}: {type(e).__name__}: {e}"
            ) from None
        _connected = address


def _already_connected() -> str | None:
    """The cluster another part of this process connected to with `ray.init`, if Ray is imported."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().gcs_address)


def _same_cluster(a: str, b: str) -> bool:
    """Whether two addresses name one cluster (Ray writes 127.0.0.1 as this machine's own address)."""
    if a == b:
        return True
    ha, hb = _host_port(a), _host_port(b)
    if ha is None or hb is None or ha[1] != hb[1]:
        return False
    local = {"127.0.0.1", "localhost", "::1", _own_ip()}
    return ha[0] == hb[0] or (ha[0] in local and hb[0] in local)


def nodes(refresh: bool = False) -> list[dict[str, Any]]:
    """The cluster's live nodes (`ray.nodes()`), cached for NODES_TTL_S."""
    global _nodes
    at, known = _nodes
    if refresh or time.monotonic() - at > NODES_TTL_S:
        import ray

        known = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        _nodes = (time.monotonic(), known)
    return known


def demand(step: PlanStep) -> dict[str, float]:
    """The step's resources in Ray's names: CPU, GPU, memory (bytes) and its custom resources."""
    res = step.resources or {}
    need: dict[str, float] = {"CPU": float(res.get("cpu", 1.0))}
    if res.get("gpu"):
        need["GPU"] = float(res["gpu"])
    if res.get("memory"):
        need["memory"] = float(memory_bytes(str(res["memory"])))
    for name, amount in dict(res.get("custom") or {}).items():
        need[str(name)] = float(amount)
    return need


def task_options(step: PlanStep, options: Mapping[str, Any]) -> dict[str, Any]:
    """`.options(...)` of the step's Ray task: its resources, and the target's scheduling options.

    `max_retries=0`: our retry policy applies, not Ray's (a retried attempt is a new attempt).
    """
    need = demand(step)
    opts: dict[str, Any] = {
        "num_cpus": need.pop("CPU"),
        "num_gpus": need.pop("GPU", 0),
        "max_retries": 0,
        "retry_exceptions": False,
        "name": f"mlops:{step.id}",
    }
    if "memory" in need:
        opts["memory"] = int(need.pop("memory"))
    if need:
        opts["resources"] = need
    strategy = str(options.get("strategy") or "DEFAULT").upper()
    if strategy not in STRATEGIES:
        raise StepFailure(f"target option strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    opts["scheduling_strategy"] = strategy
    labels = options.get("node_labels")
    if isinstance(labels, dict) and labels:
        opts["label_selector"] = {str(k): str(v) for k, v in labels.items()}
    node = _pinned_node(options)
    if node is not None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=bool(options.get("soft")))
    return opts


def _pinned_node(options: Mapping[str, Any]) -> str | None:
    """The node id a target pins its steps to (`node_id`, or `node_ip` looked up among the nodes)."""
    if options.get("node_id"):
        return str(options["node_id"])
    ip = options.get("node_ip")
    if not ip:
        return None
    for n in nodes():
        if n.get("NodeManagerAddress") == ip:
            return str(n["NodeID"])
    raise StepFailure(f"target option node_ip: no live node of the Ray cluster has the address {ip!r}")


def check_feasible(step: PlanStep, opts: Mapping[str, Any]) -> None:
    """StepFailure when no live node of the cluster could ever run the step (what they offer listed)."""
    need = demand(step)
    labels: dict[str, str] = dict(opts.get("label_selector") or {})
    strategy = opts.get("scheduling_strategy")
    pinned = None if getattr(strategy, "soft", True) else getattr(strategy, "node_id", None)

    def fits(n: dict[str, Any]) -> bool:
        total = n.get("Resources") or {}
        node_labels = n.get("Labels") or {}
        return (
            all(total.get(k, 0.0) >= v for k, v in need.items() if v > 0)
            and all(node_labels.get(k) == v for k, v in labels.items())
            and (pinned is None or n.get("NodeID") == pinned)
        )

    if any(fits(n) for n in nodes()) or any(fits(n) for n in nodes(refresh=True)):
        return
    wanted = ", ".join(f"{k}={_show(k, v)}" for k, v in need.items() if v > 0)
    extra = f" with labels {labels}" if labels else ""
    extra += f" on node {pinned}" if pinned else ""
    offered = "; ".join(_describe(n) for n in nodes()) or "no live node"
    raise StepFailure(
        f"no node of the Ray cluster can run this step: it needs {wanted}{extra}; the nodes offer: "
        f"{offered}. Lower the step's resources, or add a node that has them (ray start --resources ...)"
    )


def _show(name: str, value: float) -> str:
    if name in ("memory", "object_store_memory"):
        return f"{value / 2**30:.2f}Gi"
    return f"{value:g}"


def _describe(n: dict[str, Any]) -> str:
    total = n.get("Resources") or {}
    shown = ", ".join(
        f"{k}={_show(k, v)}"
        for k, v in sorted(total.items())
        if not k.startswith("node:") and k != "object_store_memory" and not k.startswith("accelerator_type")
    )
    return f"{n.get('NodeManagerAddress', '?')} ({str(n.get('NodeID', '?'))[:12]}): {shown}"


def disconnect() -> None:
    """Leave the cluster this process is connected to (tests; a process that drives another cluster)."""
    global _connected, _nodes
    with _lock:
        if _connected is not None:
            import ray

            ray.shutdown()
        _connected, _nodes = None, (0.0, [])
