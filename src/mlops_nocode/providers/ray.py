"""The `ray` provider: an existing Ray cluster (`options.address`, else RAY_ADDRESS, as Ray's own tools).

Driver mode (`submit: driver`, the default): the Runner that runs the run (`mlops run`, a gateway worker,
a Ray Job's entrypoint) stays the scheduler and submits each python or command step as a Ray task
(runtime/executors/ray.py); Ray places and executes them. Nothing is provisioned or rented here.
`submit: job`: the gateway's worker submits the deployment's Runner as a Ray Job (providers/ray_jobs.py).

Offers: the cluster is the user's own and free. Without a refresh it is one permissive offer (Ray checks
the steps' resources at run time); `mlops targets refresh ray` reads the live nodes into the offer's
`extra.nodes`, and placement then refuses a step that no node could run, listing the nodes.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.providers import ray_jobs
from mlops_nocode.providers.base import (
    Bundle,
    Deployment,
    Features,
    LaunchSpec,
    Offer,
    ProviderError,
    Provisioned,
    TargetState,
)
from mlops_nocode.providers.pricing import PriceSheet, PriceSheetError, load_sheet, save_sheet
from mlops_nocode.providers.ray_options import (
    dashboard_url,
    demand_text,
    fits,
    node_text,
    option_problems,
    valid_address,
)
from mlops_nocode.runtime.executors import runtimes_for

NAME = "ray"
OFFER_ID = "cluster"
REFRESH_TIMEOUT_S = 60.0
FEATURES = Features(
    runtimes=runtimes_for(NAME),
    unsupported={
        "container": "container steps are not run as Ray tasks in this version: use a command step that "
        "the nodes can run, or the k3s target",
    },
    gpus=True,
    provisions=False,
    iac="none",
    custom_resources=True,
)
NO_ADDRESS = (
    "names no Ray cluster: neither the target's options.address nor RAY_ADDRESS is set",
    "",
    "set RAY_ADDRESS (e.g. export RAY_ADDRESS=10.0.0.5:6379) or the target's options.address",
)


def address(options: Mapping[str, object], env: Mapping[str, str] | None = None) -> str:
    """The cluster's address: the target's `address` option, else RAY_ADDRESS; "" when neither is set."""
    given = options.get("address")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return (os.environ if env is None else env).get("RAY_ADDRESS", "").strip()


def cluster_offer(addr: str = "") -> Offer:
    """The cluster as one offer, free (it is the user's own): its size is checked by Ray at run time."""
    note = f"your own Ray cluster at {addr}, free: nothing is rented" if addr else ""
    extra = {"address": addr, "why": note} if addr else {}
    return Offer(
        NAME, OFFER_ID, 1e6, 1e6, 0.0, gpu_type="any", gpu_count=10_000, gpu_memory_gib=1e6, extra=extra
    )


def nodes_offer(addr: str, nodes: list[dict[str, Any]]) -> Offer:
    """The cluster as one offer sized by its largest node (a step runs on one node), the nodes in extra."""
    gpu_node = max(nodes, key=lambda n: n["gpu"], default=None)
    gpus = int(gpu_node["gpu"]) if gpu_node else 0
    return Offer(
        NAME,
        OFFER_ID,
        max((float(n["cpu"]) for n in nodes), default=0.0) or 0.001,
        max((float(n["memory_gib"]) for n in nodes), default=0.0),
        0.0,
        gpu_type=(str(gpu_node["gpu_type"]) or "any") if gpu_node and gpus else "",
        gpu_count=gpus,
        gpu_memory_gib=1e6 if gpus else 0.0,  # Ray does not say: the step's gpu_memory is not checked
        extra={
            "address": addr,
            "why": f"your own Ray cluster at {addr} ({len(nodes)} live nodes when refreshed), free",
            "nodes": nodes,
        },
    )


def _refreshed(addr: str) -> Offer | None:
    try:
        sheet = load_sheet(NAME)
    except PriceSheetError:
        return None
    return next((o for o in sheet.offers if o.extra.get("address") == addr), None)


class RayProvider:
    """An existing Ray cluster: steps become Ray tasks submitted by the run's Runner (or a Ray Job's)."""

    name = NAME
    features = FEATURES

    def state(self, env: Mapping[str, str]) -> TargetState:
        missing = [] if importlib.util.find_spec("ray") else ["ray (pip install 'mlops-nocode[ray]')"]
        addr = address({}, env)
        if not addr:
            missing.append("RAY_ADDRESS (the cluster's address), or give the target an options.address")
        notes = [f"RAY_ADDRESS={addr}"] if addr else []
        offer = _refreshed(addr) if addr else None
        if offer is not None:
            notes.append(f"{len(offer.extra.get('nodes') or [])} node(s) read by `mlops targets refresh ray`")
        elif addr:
            notes.append("nodes not read yet: `mlops targets refresh ray` (Ray checks resources at run time)")
        return TargetState(NAME, credentials=bool(addr), missing=tuple(missing), notes=tuple(notes))

    def reachable(self, env: Mapping[str, str]) -> str | None:
        """None when the cluster's port at RAY_ADDRESS accepts a connection, else why not (asked with
        `mlops targets --provider ray --check`)."""
        addr = address({}, env)
        if not addr or addr == "auto" or not valid_address(addr):
            return None if addr == "auto" else f"no cluster address to reach ({addr[:60]!r})"
        host, _, port = addr.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=2.0).close()
        except OSError as e:
            return f"the Ray cluster at {addr} cannot be reached ({e.strerror or e})"
        return None

    def offers(self) -> list[Offer]:
        """The configured cluster (RAY_ADDRESS) as one free offer; none when no cluster is configured, so
        `auto` only picks Ray when there is one."""
        return self.offers_for({}, os.environ)

    def offers_for(self, options: Mapping[str, Any], env: Mapping[str, str]) -> list[Offer]:
        """The offer of the cluster a target names: refreshed (its nodes) or permissive; none without one."""
        addr = address(options, env)
        if not addr:
            return []
        return [_refreshed(addr) or cluster_offer(addr)]

    def check_step(
        self, step: PlanStep, options: Mapping[str, Any], env: Mapping[str, str]
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        """(problems of the target, reported once for its steps; problems of this step): bad options, no
        address, and, once the nodes were read, resources no node offers (the nodes listed)."""
        bad = [
            (f"target option {k!r} {w}", f"target.options.{k}" if k else "", fix)
            for w, k, fix in option_problems(options)
        ]
        addr = address(options, env)
        if not bad and not addr:
            bad.append((f"target ray {NO_ADDRESS[0]}", "", NO_ADDRESS[2]))
        elif not bad and not valid_address(addr):
            job = options.get("submit") == "job"
            if addr.startswith(("http://", "https://")) and not job:
                what = f"RAY_ADDRESS is {addr[:60]!r}, a dashboard URL (as `ray job submit` takes it): the "
                what += "run's Runner connects to the cluster's GCS address"
                bad.append((what, "", "set RAY_ADDRESS=host:port (the head's --port, e.g. 10.0.0.5:6379)"))
            elif not (job and addr.startswith(("http://", "https://"))):
                bad.append(
                    (f"RAY_ADDRESS is {addr[:60]!r}, not a cluster address", "", "set RAY_ADDRESS=host:port")
                )
        if bad:
            return bad, []
        offer = _refreshed(addr)
        nodes = list(offer.extra.get("nodes") or []) if offer is not None else []
        if offer is None or any(fits(n, step.resources, options) for n in nodes):
            return [], []
        listed = "; ".join(node_text(n) for n in nodes) or "no live node"
        what = (
            f"needs {demand_text(step.resources, options)}, which no node of the Ray cluster at {addr} "
            f"offers (its nodes, read by `mlops targets refresh ray`: {listed})"
        )
        fix = "lower the step's resources, add a node that has them (ray start --resources ...), or run "
        fix += "`mlops targets refresh ray` again if the cluster changed"
        return [], [(what, "resources", fix)]

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        """Read the live nodes of the cluster at RAY_ADDRESS (`ray.nodes()`, in a process of its own) into
        the offer kept under MLOPS_HOME/prices/ray.json."""
        addr = address({}, env)
        if not importlib.util.find_spec("ray"):
            raise ProviderError("ray is not installed", "ray", "pip install 'mlops-nocode[ray]'")
        nodes = _read_nodes(addr, env)
        offer = nodes_offer(addr, nodes)
        try:
            kept = [o for o in load_sheet(NAME).offers if o.extra.get("address") != addr]
        except PriceSheetError:
            kept = []
        source = f"ray.nodes() of the cluster at {addr}"
        save_sheet(PriceSheet(NAME, datetime.date.today().isoformat(), source, "USD", (*kept, offer)))
        return [offer]

    def render(self, deployment: Deployment) -> Bundle:
        if deployment.options.get("submit") == "job":
            addr = address(deployment.options)
            bundle = ray_jobs.bundle(deployment, dashboard_url(deployment.options, addr))
        else:
            bundle = Bundle(deployment.name, NAME, {}, (), 0.0)
        if "kuberay" in deployment.options:  # + a KubeRay RayCluster sized for the steps (kuberay.py)
            from mlops_nocode.providers.kuberay import with_raycluster

            bundle = with_raycluster(bundle, deployment)
        return bundle

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        if "job.json" in bundle.files:
            return ray_jobs.provision(bundle, workdir)
        return Provisioned(bundle.deployment, NAME, ())

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        if provisioned.handle.get("submission_id"):
            ray_jobs.launch(provisioned, spec, env)

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        if provisioned.handle.get("submission_id"):
            return ray_jobs.status(provisioned)
        return "running"

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        if provisioned.handle.get("submission_id"):
            ray_jobs.teardown(provisioned)


def _read_nodes(addr: str, env: Mapping[str, str]) -> list[dict[str, Any]]:
    where = "RAY_ADDRESS"
    if not valid_address(addr):
        raise ProviderError(f"RAY_ADDRESS is {addr[:60]!r}, not a cluster address", where, "set host:port")
    host, _, port = addr.removeprefix("ray://").rpartition(":")
    if addr != "auto":
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=3.0).close()
        except OSError as e:
            raise ProviderError(
                f"the Ray cluster at {addr} cannot be reached ({e.strerror or e})", where, _FIX
            ) from None
    cmd = [sys.executable, "-m", "mlops_nocode.providers.ray_nodes", addr]
    try:
        done = subprocess.run(
            cmd, env=dict(env), capture_output=True, text=True, timeout=REFRESH_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProviderError(
            f"the Ray cluster at {addr} did not answer within {REFRESH_TIMEOUT_S:g}s", where, _FIX
        ) from None
    try:
        nodes = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (ValueError, IndexError):
        nodes = None
    if not isinstance(nodes, list) or not nodes:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no node"]
        raise ProviderError(
            f"cannot read the nodes of the Ray cluster at {addr}: {tail[0][:300]}", where, _FIX
        )
    return nodes


_FIX = "start the cluster (ray start --head) or fix RAY_ADDRESS, then run `mlops targets refresh ray` again"

PROVIDER = RayProvider()
