"""The `vastai` provider: GPU instances rented on Vast.ai's marketplace, through its REST API.

Vast.ai has no Terraform provider, so the bundle is the exact API requests provisioning sends (JSON).
An instance runs the runner image with `mlops execute plan.json --report-to $MLOPS_REPORT_TO`; the run
token, the gateway URL and the steps' secrets reach it through the create request's `env`, filled in at
provision time from the environment only.

A lost instance (its host went offline, or it vanished while it should run) shows as status "lost";
`fail_if_lost` destroys it and raises a ProviderError whose `what` is the reason the run fails with.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops_nocode.providers import pricing
from mlops_nocode.providers import vastai_render as vr
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
from mlops_nocode.providers.vastai_api import KEY_ENV, VastApi, VastApiError, settings
from mlops_nocode.runtime.executors import runtimes_for

NAME = "vastai"
SEARCH, CREATE, START = "search_offers.json", "create_instance.json", "start.sh"
SHOW, DESTROY = "show_instance.json", "destroy_instance.json"
RUNNING, PENDING = frozenset({"running"}), frozenset({"loading", "created", "scheduling", "starting"})
GONE = frozenset({"offline", "unknown", "error"})  # the host stopped answering, or the start failed


def normalise_gpu(vast_name: str, gpu_ram_gib: float) -> str:
    """A marketplace GPU name as the platform writes GPU types: 'RTX 4090' -> 'RTX-4090',
    'A100 SXM4' with 80 GB -> 'A100-80GB' (data-centre parts carry their memory)."""
    words = [
        w for w in vast_name.replace("_", " ").upper().split() if w not in {"SXM", "SXM4", "SXM5", "PCIE"}
    ]
    name = "-".join(words) or "GPU"
    if words and words[0] in {"A100", "H100", "H200", "A800", "H800", "B200"} and gpu_ram_gib:
        name += f"-{round(gpu_ram_gib)}GB"
    return name


def offer_from_api(o: Mapping[str, Any]) -> Offer:
    """An Offer from one search answer row (fields as in vastai/data/offer.py; RAM in MiB)."""
    gpu_ram = float(o.get("gpu_ram") or 0) / 1024  # MiB, e.g. 24576 for a 24 GB card
    geo = str(o.get("geolocation") or "")
    region = geo.rsplit(",", 1)[-1].strip() if geo else ""
    count = int(o.get("num_gpus") or 0)
    name = str(o.get("gpu_name") or "")
    return Offer(
        provider=NAME,
        id=f"{name.replace(' ', '_')}x{count}" + (f"/{region}" if region else ""),
        vcpus=float(o.get("cpu_cores_effective") or 0),
        memory_gib=round(float(o.get("cpu_ram") or 0) / 1024, 1),
        price_per_hour=round(float(o.get("dph_total") or 0), 4),
        region=region,
        gpu_type=normalise_gpu(name, gpu_ram) if count else "",
        gpu_count=count,
        gpu_memory_gib=round(gpu_ram, 1),
        extra={
            "vast_gpu_name": name,
            "ask_id": o.get("id"),
            "reliability": o.get("reliability2", o.get("reliability")),
            "disk_gb": o.get("disk_space"),
            "inet_down_mbps": o.get("inet_down"),
            "verified": True,
            "interruptible": False,
        },
    )


class VastaiProvider:
    """Vast.ai marketplace instances (see the module's docstring)."""

    name = NAME
    features = Features(
        runtimes=runtimes_for("vastai"),
        unsupported={
            "litellm": "model routes and their keys live with the gateway's MLOPS_HOME, which a remote "
            "Runner cannot read: run litellm steps on the local target",
            "container": "steps run inside the Vast.ai container itself, which has no container engine, "
            "and an instance of the step's image would have no Runner to fetch its inputs and upload its "
            "outputs; place the step on a k3s target (a Kubernetes Job of its image) or on local",
            "private_networking": "instances sit on independent hosts with no private network between "
            "them: steps that talk to each other must be in one deployment",
            "interruptible": "bid instances stop whenever someone outbids them and the Runner cannot "
            "resume a step: only on-demand offers are rented",
            "stable_endpoint": "ports are mapped to random public ports per host: serve models on k3s "
            "or RunPod instead",
            "multi_node": "one instance per deployment; no cluster of instances",
        },
        gpus=True,
        provisions=True,
        iac="sdk",
    )

    def state(self, env: Mapping[str, str]) -> TargetState:
        has_key = bool(env.get(KEY_ENV, "").strip())
        return TargetState(
            provider=NAME,
            credentials=has_key,
            missing=() if has_key else (KEY_ENV,),
            tools={},
            notes=("no terraform needed: the Vast.ai REST API is called directly",),
        )

    def offers(self) -> list[Offer]:
        return list(pricing.load_sheet(NAME).offers)

    def refresh_offers(self, env: Mapping[str, str]) -> list[Offer]:
        """Search the marketplace (verified, on-demand, reliable hosts) and keep the cheapest offer per
        GPU type, count and country as the price sheet from now on."""
        conf = settings()
        query = {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "reliability": {"gte": conf.vastai_min_reliability},
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "limit": 500,
            "allocated_storage": conf.vastai_disk_gb,
        }
        with VastApi(env, conf) as api:
            rows = api.search_offers(query)
        best: dict[tuple[str, int, str], Offer] = {}
        for row in rows:
            try:
                offer = offer_from_api(row)
            except (TypeError, ValueError):
                continue  # a malformed row is skipped, not trusted
            key = (offer.gpu_type, offer.gpu_count, offer.region)
            if offer.price_per_hour > 0 and (
                key not in best or offer.price_per_hour < best[key].price_per_hour
            ):
                best[key] = offer
        offers = sorted(best.values(), key=lambda o: (o.gpu_type, o.gpu_count, o.price_per_hour))
        source = (
            f"Vast.ai API POST {conf.vast_url}/api/v0/bundles/ (verified on-demand offers, reliability >= "
            f"{conf.vastai_min_reliability:g}, {conf.vastai_disk_gb:g} GB disk included): a snapshot of a "
            "market whose prices change by the minute"
        )
        today = dt.datetime.now(dt.UTC).date().isoformat()
        pricing.save_sheet(pricing.PriceSheet(NAME, today, source, "USD", tuple(offers)))
        return offers

    def _estimate(self, n: vr.Needs, offer: Offer | None, opts: Mapping[str, Any]) -> float:
        if offer is not None:
            return offer.price_per_hour
        fits = [
            o
            for o in self.offers()
            if o.vcpus >= n.vcpus
            and o.memory_gib >= n.memory_gib
            and o.gpu_count >= max(n.gpus, 1)
            and (not opts.get("gpu_name") or o.extra.get("vast_gpu_name") == opts["gpu_name"])
        ]
        return min((o.price_per_hour for o in fits), default=float(opts.get("max_price") or 0.0))

    def render(self, deployment: Deployment) -> Bundle:
        conf = settings()
        opts = vr.options(deployment, conf)
        n = vr.needs(deployment)
        query = vr.search_query(n, deployment.offer, opts)
        plan = deployment.plan.to_text()
        script, inline = vr.start_script(plan)
        required, optional = vr.env_names(deployment, inline)
        the_label = vr.label(deployment)
        body = vr.create_body(conf.vastai_runner_image, script, opts["disk_gb"], the_label, required)
        timeouts = [s.timeout for s in deployment.steps]
        hours = opts["hours"] or (
            round(sum(t for t in timeouts if t) / 3600, 4) if timeouts and all(timeouts) else None
        )
        meta = {
            "label": the_label,
            "required_env": required,
            "optional_env": optional,
            "plan_inline": inline,
            "steps": [s.id for s in deployment.steps],
        }
        files = {
            SEARCH: vr.request_file("POST", "/api/v0/bundles/", query, "find offers; the cheapest is rented"),
            CREATE: vr.request_file(
                "PUT",
                "/api/v0/asks/{offer_id}/",
                body,
                "rent the offer found; each env placeholder is replaced by the variable's value "
                "at provision time (variables in optional_env only when set)",
            ),
            START: script,
            SHOW: vr.request_file("GET", "/api/v0/instances/{instance_id}/?owner=me", None, "status"),
            DESTROY: vr.request_file("DELETE", "/api/v0/instances/{instance_id}/", {}, "teardown"),
            "deployment.json": json.dumps(meta, indent=2, ensure_ascii=True) + "\n",
        }
        return Bundle(
            deployment=deployment.name,
            provider=NAME,
            files=files,
            resources=({"type": "vastai_instance", "name": the_label},),
            price_per_hour=round(self._estimate(n, deployment.offer, opts), 4),
            hours=hours,
            env=tuple(required + optional),
        )

    def provision(self, bundle: Bundle, workdir: Path, env: Mapping[str, str]) -> Provisioned:
        """Search offers again with the rendered query, rent the cheapest (the next one if it was just
        taken), and record the instance id; if anything fails after renting, destroy it."""
        query = json.loads(bundle.files[SEARCH])["body"]
        body = json.loads(bundle.files[CREATE])["body"]
        meta = json.loads(bundle.files["deployment.json"])
        missing = [name for name in meta["required_env"] if not env.get(name)]
        if missing:
            raise ProviderError(
                f"cannot start the Vast.ai Runner: {', '.join(missing)} not set",
                f"deployment {bundle.deployment}",
                "the run flow sets MLOPS_RUN_TOKEN and MLOPS_REPORT_TO; export the step secrets named",
            )
        values = {name: env[name] for name in meta["required_env"]}
        values |= {name: env[name] for name in meta["optional_env"] if env.get(name)}
        body["env"] = values  # by key: nothing user-written is searched or substituted
        workdir.mkdir(parents=True, exist_ok=True)
        with VastApi(env) as api:
            offers = api.search_offers(query)
            if not offers:
                raise ProviderError(
                    f"no Vast.ai offer fits deployment {bundle.deployment} now",
                    f"{bundle.deployment}/{SEARCH}",
                    "relax target.options (max_price, min_reliability, gpu_name, regions), plan again "
                    "later (the market changes by the minute), or choose another target",
                )
            instance_id, offer = self._rent(api, offers[:3], body)
            handle = {
                "instance_id": instance_id,
                "offer_id": offer.get("id"),
                "price_per_hour": offer.get("dph_total"),
                "label": meta["label"],
            }
            (workdir / "vastai.json").write_text(json.dumps(handle) + "\n", encoding="utf-8")
        return Provisioned(bundle.deployment, NAME, bundle.resources, str(workdir), handle)

    def _rent(
        self, api: VastApi, offers: list[dict[str, Any]], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        last: ProviderError | None = None
        for offer in offers:
            try:
                return api.create_instance(int(offer["id"]), body), offer
            except VastApiError as e:
                if e.kind != "gone":
                    self._sweep(api, str(body["label"]), e)
                    raise
                last = e  # taken by someone else meanwhile: try the next cheapest
            except (KeyError, TypeError, ValueError):
                continue
        raise last or ProviderError(
            "no Vast.ai offer in the search answer could be rented",
            "Vast.ai marketplace",
            "plan again later or choose another target",
        )

    def _sweep(self, api: VastApi, the_label: str, cause: VastApiError) -> None:
        """After a create failed without an answer saying whether it rented (no answer, or a 5xx),
        destroy any instance it made anyway."""
        if cause.kind not in ("unreachable", "server"):
            return
        try:
            for instance_id in api.instances_labelled(the_label):
                api.destroy_instance(instance_id)
        except ProviderError as e:
            cause.created = (*cause.created, f"instances labelled {the_label} (check: {e.what})")

    def launch(self, provisioned: Provisioned, spec: LaunchSpec, env: Mapping[str, str]) -> None:
        """The Runner starts with the instance; this checks the instance is not already lost."""
        fail_if_lost(provisioned, env)

    def status(self, provisioned: Provisioned, env: Mapping[str, str]) -> str:
        instance_id = provisioned.handle.get("instance_id")
        if instance_id is None:
            return "destroyed"
        with VastApi(env) as api:
            row = api.show_instance(int(instance_id))
        return status_of(row)

    def teardown(self, provisioned: Provisioned, env: Mapping[str, str]) -> None:
        instance_id = provisioned.handle.get("instance_id")
        if instance_id is None:
            return  # provision created nothing
        with VastApi(env) as api:
            api.destroy_instance(int(instance_id))  # already gone (404) counts as destroyed


def status_of(row: Mapping[str, Any] | None) -> str:
    """running/pending/exited/lost from an instance's actual_status and intended_status."""
    if row is None:
        return "lost"  # gone while it should run (destroyed by someone else, or the host removed it)
    actual = str(row.get("actual_status") or "").lower()
    intended = str(row.get("intended_status") or "running").lower()
    if actual in GONE:
        return "lost"
    if actual in RUNNING:
        return "running"
    if actual in ("exited", "stopped") or intended in ("stopped", "exited"):
        return "exited"
    return "pending"


def fail_if_lost(provisioned: Provisioned, env: Mapping[str, str]) -> None:
    """When the instance is lost, destroy it and raise a ProviderError naming why (the run fails with
    it); otherwise return. The run flow calls this while it follows a run on Vast.ai."""
    instance_id = provisioned.handle.get("instance_id")
    if instance_id is None:
        return
    with VastApi(env) as api:
        row = api.show_instance(int(instance_id))
        if status_of(row) != "lost":
            return
        why = "it no longer exists" if row is None else f"its host reports {row.get('actual_status')!r}"
        msg = str((row or {}).get("status_msg") or "")[:200]
        api.destroy_instance(int(instance_id))
    raise ProviderError(
        f"Vast.ai instance {instance_id} was lost mid-run: {why}"
        + (f" ({msg})" if msg else "")
        + "; it has been destroyed",
        f"deployment {provisioned.deployment}",
        "run again: a new offer on another host is rented",
    )


PROVIDER = VastaiProvider()
