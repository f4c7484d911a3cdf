"""The `ray` provider: an existing Ray cluster (`options.address`, else RAY_ADDRESS, as Ray's own tools).

Driver mode (the default): the Runner that runs the run (`mlops run`, a gateway worker, a Ray Job's
entrypoint) stays the scheduler and submits each python or command step as a Ray task
(runtime/executors/ray.py); Ray places and executes them. Nothing is provisioned or rented here.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from mlops_nocode.providers.base import (
    Bundle,
    Deployment,
    Features,
    LaunchSpec,
    Offer,
    Provisioned,
    TargetState,
)
from mlops_nocode.runtime.executors import runtimes_for

NAME = "ray"
OFFER_ID = "cluster"
FEATURES = Features(
    runtimes=runtimes_for(NAME),
    unsupported={
        "container": "container steps are not run as Ray tasks in this version: use a command step that "
        "the nodes can run, or the k3s target",
    },
    gpus=True,
    provisions=False,
    iac="none",
)


def address(options: Mapping[str, object], env: Mapping[str, str] | None = None) -> str:
    """The cluster's address: the target's `address` option, else RAY_ADDRESS; "" when neither is set."""
    given = options.get("address")
    if isinstance(given, str) and given.strip():
        return given.strip()
    return (os.environ if env is None else env).get("RAY_ADDRESS", "").strip()


def cluster_offer() -> Offer:
    """The cluster as one offer, free (it is the user's own): its size is checked by Ray at run time."""
    return Offer(NAME, OFFER_ID, 1e6, 1e6, 0.0, gpu_type="any", gpu_count=10_000, gpu_memory_gib=1e6)


class RayProvider:
    """An existing Ray cluster: steps become Ray tasks submitted by the run's Runner."""

    name = NAME
    features = FEATURES

    def state(self, env: Mapping[str, str]) -> TargetState:
        missing = [] if importlib.util.find_spec("ray") else ["ray (pip install 'mlops-nocode[ray]')"]
        notes = (f"RAY_ADDRESS={env['RAY_ADDRESS']}",) if env.get("RAY_ADDRESS") else ()
        return TargetState(NAME, credentials=True, missing=tuple(missing), notes=notes)

    def offers(self) -> list[Offer]:
        """The configured cluster (RAY_ADDRESS) as one free offer; none when no cluster is configured, so
        `auto` only picks Ray when there is one."""
        return [cluster_offer()] if address({}) else []

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        return self.offers()

    def render(self, deployment: Deployment) -> Bundle:
        return Bundle(deployment.name, NAME, {}, (), 0.0)

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        return Provisioned(bundle.deployment, NAME, ())

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        return None

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        return "running"

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        return None


PROVIDER = RayProvider()
