"""The placement stage: each compiled step gets a provider, an offer and a price, with the reasons.

`place` writes `PlanStep.placement` = {"provider", "deployment", "offer" (Offer JSON), "price_per_hour",
"why", "runner_up"} into every step, or raises SpecError with located problems (a provider that is not
installed, a runtime it cannot run, nothing that fits). `deployments` groups the placed steps into what
is rendered and provisioned together. `check_placed` is what a Runner checks before executing a placed
plan: local steps against this machine, remote ones against the offer they were placed on.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlops_nocode.compiler.plan import Plan, PlanStep
from mlops_nocode.providers import local, registry
from mlops_nocode.providers.base import Offer, Provider
from mlops_nocode.providers.constraints import Needs, malformed_resources, needs_of
from mlops_nocode.providers.grouping import deployment_names, shared_targets
from mlops_nocode.providers.grouping import deployments as deployments  # where callers look for it
from mlops_nocode.providers.pricing import PriceSheetError
from mlops_nocode.spec import Problem, SpecError

LABELS = {
    "vcpus": "vCPUs (resources.cpu, min_vcpus)",
    "memory": "memory (resources.memory, min_memory)",
    "gpu_count": "GPU count (resources.gpu, gpu_count)",
    "runtime": "the step's runtime",
    "custom": "custom resources (resources.custom: only a ray target offers them)",
}
CHECKED = {  # what a Runner checks of a remote step against the offer it was placed on
    **LABELS,
    "gpu_type": "GPU model (resources.gpu_type)",
    "min_gpu_memory": "GPU memory (resources.gpu_memory)",
}


_SOFT = {"max_price_per_hour": 1, "vcpus": 2, "memory": 2}  # what a user relaxes first; others: 3


def _nearness(missed: tuple[Offer, list[str]]) -> tuple[int, int, float, str, str]:
    """Nearest first: fewer constraints missed, then softer ones (price before size before kind)."""
    o, miss = missed
    return (len(miss), max(_SOFT.get(m, 3) for m in miss), o.price_per_hour, o.provider, o.id)


@dataclass(frozen=True, slots=True)
class _Choice:
    placement: dict[str, Any]
    problems: tuple[tuple[str, str, str], ...] = ()  # (what, where suffix or "", fix)
    grouped: bool = False  # the same for every step with this target: report once, naming the steps


def _money(price: float) -> str:
    return f"${price:.4g}/h"


def offer_text(o: Offer) -> str:
    gpu_mem = f" {o.gpu_memory_gib:g}Gi" if o.gpu_memory_gib else ""
    gpu = f"{o.gpu_count}x {o.gpu_type or 'GPU'}{gpu_mem}, " if o.gpu_count else ""
    where = f" in {o.region}" if o.region else ""
    size = f"{gpu}{o.vcpus:g} vCPU, {o.memory_gib:g} GiB"
    return f"{o.provider} {o.id} ({size}) at {_money(o.price_per_hour)}{where}"


class _Placer:
    """One placement: the offers and states of providers are read once and choices cached per target."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.known = registry.names()
        self._offers: dict[str, list[Offer] | str] = {}
        self._creds: dict[str, str] = {}
        self._cache: dict[str, _Choice] = {}
        self._by_id: dict[tuple[int, int, str], _Choice] = {}

    def offers(self, provider: Provider, options: Mapping[str, Any] | None = None) -> list[Offer] | str:
        # a provider may offer per target (ray: the cluster its options or RAY_ADDRESS name)
        offers_for = getattr(provider, "offers_for", None)
        key = provider.name
        if offers_for is not None:
            key += "\0" + json.dumps(options or {}, sort_keys=True, default=str)
        if key not in self._offers:
            try:
                found = offers_for(options or {}, self.env) if offers_for else provider.offers()
                self._offers[key] = list(found)
            except PriceSheetError as e:
                self._offers[key] = f"its price sheet cannot be read: {e}"
        return self._offers[key]

    def credentials(self, provider: Provider) -> str:
        if provider.name not in self._creds:
            state = provider.state(self.env)
            self._creds[provider.name] = (
                f"{provider.name} credentials present"
                if state.credentials
                else f"{provider.name} credentials missing (set {', '.join(state.missing) or 'them'})"
            )
        return self._creds[provider.name]

    def choose(self, step: PlanStep) -> _Choice:
        # Steps of one playbook under one target share their dicts: look them up by identity first (they
        # live as long as the plan), then by value.
        fast = (id(step.target), id(step.resources), step.runtime)
        found = self._by_id.get(fast)
        if found is not None:
            return found
        target = step.target if isinstance(step.target, dict) else {}
        options = target.get("options") or {}
        key = json.dumps([target, step.resources, step.runtime], sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = self._choose(step, str(target.get("provider", "local")), options)
        self._by_id[fast] = self._cache[key]
        return self._cache[key]

    def _choose(self, step: PlanStep, name: str, options: Mapping[str, Any]) -> _Choice:
        bad_resources = malformed_resources(step.resources)
        if bad_resources:
            return _Choice(
                {}, ((bad_resources, "resources", "write the plan again with `mlops plan --out`"),)
            )
        needs, bad = needs_of(step.resources, options, "target.options", self.known)
        if bad:
            return _Choice({}, tuple((p.what, p.where, p.fix) for p in bad), grouped=True)
        if name == "auto":
            names = [n for n in (needs.providers or self.known) if n not in needs.exclude]
            return self._pick(step, needs, names, auto=True, options=options)
        try:
            registry.get(name)
        except registry.ProviderMissing as e:
            installed = ", ".join(p.name for p in registry.installed())
            what = f"target provider {name!r} is not available in this version ({e.reason}; "
            what += f"installed: {installed})"
            return _Choice({}, ((what, "", f"choose one of: {installed}, auto"),), grouped=True)
        if name == "local":
            unmet = local.unmet_needs(step, local.capabilities())
            if unmet:
                return _Choice({}, tuple(self._elsewhere(step, needs, u) for u in unmet))
        if name == "ray" and "kuberay" in options:  # the RayCluster's options (providers/kuberay.py)
            from mlops_nocode.providers.kuberay import option_problems

            bad_kuberay = option_problems(options["kuberay"])
            if bad_kuberay:
                return _Choice({}, tuple((p.what, p.where, p.fix) for p in bad_kuberay), grouped=True)
        features = registry.get(name).features
        runtimes = features.runtimes
        if step.runtime not in runtimes:
            what = f"uses runtime {step.runtime!r}, which {name} cannot run (it runs: "
            what += f"{', '.join(sorted(runtimes))})"
            fix = features.unsupported.get(step.runtime) or (
                "choose a target that supports it, or a playbook with a supported runtime"
            )
            return _Choice({}, ((what, "runtime", fix),))
        check = getattr(registry.get(name), "check_step", None)  # a provider's own checks (ray)
        if check is not None:
            of_target, of_step = check(step, options, self.env)
            if of_target:
                return _Choice({}, tuple(of_target), grouped=True)
            if of_step:
                return _Choice({}, tuple(of_step))
        return self._pick(step, needs, [name], auto=False, options=options)

    def _elsewhere(self, step: PlanStep, needs: Needs, unmet: tuple[str, str, str]) -> tuple[str, str, str]:
        """A GPU need this machine cannot meet, with the offers of the other targets that come nearest."""
        what, field, fix = unmet
        if field != "resources.gpu":
            return unmet
        fitting: list[Offer] = []
        misses: list[tuple[Offer, list[str]]] = []
        for name in self.known:
            try:
                provider = registry.get(name)
            except registry.ProviderMissing:
                continue
            offers = self.offers(provider)
            if name == "local" or isinstance(offers, str) or step.runtime not in provider.features.runtimes:
                continue
            for o in offers:
                if not o.extra.get("example"):
                    miss = needs.misses(o)
                    (misses.append((o, miss)) if miss else fitting.append(o))
        if fitting:
            fitting.sort(key=lambda o: (o.price_per_hour, o.provider, o.id, o.region))
            near = "; ".join(offer_text(o) for o in fitting[:3])
            return f"{what}; cheapest that fit elsewhere: {near}", field, f"{fix} (e.g. target auto)"
        if misses:
            near = "; ".join(
                f"{offer_text(o)} (misses {', '.join(m)})" for o, m in sorted(misses, key=_nearness)[:3]
            )
            return f"{what}; no target offers it, nearest: {near}", field, fix
        return unmet

    def _pick(
        self, step: PlanStep, needs: Needs, names: list[str], auto: bool, options: Mapping[str, Any]
    ) -> _Choice:
        fitting: list[Offer] = []
        misses: list[tuple[Offer, list[str]]] = []
        notes: list[str] = []
        looked: list[str] = []
        for name in names:
            try:
                provider = registry.get(name)
            except registry.ProviderMissing:
                notes.append(f"{name} not installed")
                continue
            offers = self.offers(provider, options)
            if isinstance(offers, str):
                notes.append(f"{name}: {offers}")
                continue
            if auto and not offers:  # a provider with nothing configured (ray without a cluster)
                continue
            if auto and any(o.extra.get("example") for o in offers):
                # an example of a cluster that is the user's own (k3s): not something that can be rented
                offers = [o for o in offers if not o.extra.get("example")]
                notes.append(f"{name}: example offers left out (declare yours: mlops targets refresh {name})")
            looked.append(name)
            runtime_ok = step.runtime in provider.features.runtimes
            custom_ok = not step.resources.get("custom") or provider.features.custom_resources
            for o in offers:
                miss = (
                    needs.misses(o) + ([] if runtime_ok else ["runtime"]) + ([] if custom_ok else ["custom"])
                )
                (misses.append((o, miss)) if miss else fitting.append(o))
        order = {n: i for i, n in enumerate(self.known)}
        fitting.sort(key=lambda o: (o.price_per_hour, order.get(o.provider, 99), o.id, o.region))
        if not fitting:
            return self._nothing(step, needs, looked, notes, misses, auto)
        best = fitting[0]
        runner = next((o for o in fitting[1:] if (o.provider, o.id) != (best.provider, best.id)), None)
        total = len(fitting) + len(misses)
        scope = f"of {total} offer(s) from {', '.join(looked)}"
        head = f"cheapest of {len(fitting)} fitting" if len(fitting) > 1 else "the only fitting offer"
        why = [f"{head} ({scope}) for {needs.text()}: {offer_text(best)}"]
        if best.provider == "local":
            why.append("this machine, nothing is rented")
        else:
            why.append(self.credentials(registry.get(best.provider)))
        if best.extra.get("why"):  # what the provider says of its offer (ray: your own cluster, free)
            why.append(str(best.extra["why"]))
        if notes:
            why.append("; ".join(notes))
        runner_up = None
        if runner is not None:
            extra = runner.price_per_hour - best.price_per_hour
            runner_up = {
                "provider": runner.provider,
                "offer": runner.id,
                "region": runner.region,
                "price_per_hour": runner.price_per_hour,
                "why": f"{_money(extra)} more: {offer_text(runner)}",
            }
        placement = {
            "provider": best.provider,
            "deployment": "",
            "offer": best.to_json(),
            "price_per_hour": best.price_per_hour,
            "why": "; ".join(why),
            "runner_up": runner_up,
        }
        return _Choice(placement)

    def _nothing(
        self,
        step: PlanStep,
        needs: Needs,
        looked: list[str],
        notes: list[str],
        misses: list[tuple[Offer, list[str]]],
        auto: bool,
    ) -> _Choice:
        where = "target (auto)" if auto else "target"
        if not misses:
            what = f"has no offer to be placed on: {'; '.join(notes) or 'the price sheets list none'}"
            fix = "refresh the price sheets (`mlops targets refresh`) or choose another target"
            return _Choice({}, ((what, where, fix),))
        counts = Counter(m for _, miss in misses for m in miss)
        worst, n = counts.most_common(1)[0]
        nearest = sorted(misses, key=_nearness)[:3]
        near = "; ".join(f"{offer_text(o)} (misses {', '.join(m)})" for o, m in nearest)
        what = (
            f"has no offer that fits ({needs.text()}) among {len(misses)} offers of {', '.join(looked)}: "
            f"{LABELS.get(worst, worst)} excluded the most ({n} offers); nearest: {near}"
        )
        fix = f"relax {LABELS.get(worst, worst)}, lower the step's resources, or choose another target"
        return _Choice({}, ((what, where, fix),))


def _launch_target(launch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not launch:
        return None
    return {"provider": launch.get("provider", "local"), "options": dict(launch.get("options") or {})}


def step_list(steps: list[PlanStep]) -> str:
    names = ", ".join(s.id for s in steps[:5])
    return names + (f" and {len(steps) - 5} more" if len(steps) > 5 else "")


def place(
    plan: Plan,
    launch: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    launch_where: str = "--target",
) -> Plan:
    """`plan` with every step placed (`PlanStep.placement`); SpecError with every problem otherwise.

    `launch` is the launch target (problems of steps it placed are located at `launch_where`, once),
    `env` where credentials are looked up (the process environment by default; no value is read out).
    """
    placer = _Placer(os.environ if env is None else env)
    lt = _launch_target(launch)
    grouped: dict[tuple[str, str, bool], list[tuple[str, PlanStep]]] = defaultdict(list)
    problems: list[Problem] = []
    chosen: list[dict[str, Any]] = []
    shared = shared_targets(plan.steps)
    for i, step in enumerate(plan.steps):
        group = shared.get(i)
        choice = placer.choose(step if group is None else replace(step, resources=group[0]))
        from_launch = lt is not None and step.target == lt
        for what, field, fix in choice.problems:
            if group is not None and field.startswith("target") and not choice.grouped:
                shared_what = f"the target these steps share {what}"
                grouped[(shared_what, fix, from_launch)].append((f"{step.source} > {field}", step))
            elif not choice.grouped:
                problems.append(Problem(f"step {step.id} {what}", f"{step.source} > {field}", fix))
            elif field.startswith("target.options"):
                grouped[(what, fix, from_launch)].append(
                    (field if from_launch else f"{step.source} > {field}", step)
                )
            else:
                grouped[(what, fix, from_launch)].append(
                    (launch_where if from_launch else f"{step.source} > target", step)
                )
        if group is not None and choice.placement:
            note = (
                f"; one offer for the {group[1]} steps with this target (it fits the largest needs of each)"
            )
            chosen.append({**choice.placement, "why": choice.placement["why"] + note})
        else:
            chosen.append(choice.placement)
    for (what, fix, _), found in grouped.items():  # where: at the first step it is the target of
        problems.append(
            Problem(f"{what}; it is the target of {step_list([s for _, s in found])}", found[0][0], fix)
        )
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    names = deployment_names(plan.steps, chosen)
    placed = tuple(
        replace(s, placement={**p, "deployment": n})
        for s, p, n in zip(plan.steps, chosen, names, strict=True)
    )
    return replace(plan, steps=placed)


def placement_problems(plan: Plan) -> list[Problem]:
    """Why `plan` cannot be placed (empty when it can): the `placement` check of validation."""
    try:
        place(plan)
    except SpecError as e:
        return list(e.problems)
    return []
