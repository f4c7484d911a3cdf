"""What `mlops targets` and `GET /api/v1/targets` show: each provider, its state and its offers.

No secret value is read out: a state says which variables are present or missing, by name only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mlops_nocode.providers import pricing, registry
from mlops_nocode.providers.base import Offer, Provider, ProviderError


class UnknownProvider(LookupError):
    """A provider name this installation does not know."""


def _sheet(name: str) -> dict[str, Any] | None:
    try:
        sheet = pricing.load_sheet(name)
    except pricing.PriceSheetError as e:
        return {"date": None, "source": None, "refreshed": False, "error": str(e).split(": ", 1)[-1]}
    refreshed = pricing.sheet_path(name).parent == pricing.user_prices_dir()
    return {"date": sheet.date, "source": sheet.source, "refreshed": refreshed, "currency": sheet.currency}


def _terraform(env: Mapping[str, str]) -> bool:
    """Whether `terraform` or `tofu` is present (as the Terraform runner finds it)."""
    from mlops_nocode.iac.terraform import TerraformRunner

    return TerraformRunner.find_binary(env) is not None


def describe(provider: Provider, env: Mapping[str, str], check: bool = False) -> dict[str, Any]:
    """One installed provider: state, features, price sheet and offers (cheapest first). With `check`,
    providers that can say whether they answer now (ray: its cluster) are asked (network)."""
    state = provider.state(env)
    probe = getattr(provider, "reachable", None) if check else None
    if probe is not None:  # None when it answers, else why not (then the provider is not ready)
        why = probe(env)
        if why is None:
            state = replace(state, notes=(*state.notes, "reachable now"))
        else:
            state = replace(state, missing=(*state.missing, why))
    offers: list[Offer] = []
    problem = None
    try:
        offers = sorted(provider.offers(), key=lambda o: (o.price_per_hour, o.id, o.region))
    except pricing.PriceSheetError as e:
        problem = str(e)
    return {
        "provider": provider.name,
        "installed": True,
        "available": state.ready,  # the field the API had before: usable now
        "ready": state.ready,
        "credentials": state.credentials,
        "missing": list(state.missing),
        "terraform": _terraform(env) if provider.features.iac == "terraform" else None,
        "tools": {b: path is not None for b, path in state.tools.items()},
        "notes": list(state.notes) + ([problem] if problem else []),
        "features": {
            "runtimes": sorted(provider.features.runtimes),
            "gpus": provider.features.gpus,
            "provisions": provider.features.provisions,
            "iac": provider.features.iac,
            "unsupported": dict(provider.features.unsupported),
        },
        "sheet": _sheet(provider.name),
        "offers": [o.to_json() for o in offers],
    }


def targets(env: Mapping[str, str], provider: str | None = None, check: bool = False) -> list[dict[str, Any]]:
    """Every known provider (or only `provider`), installed or not; UnknownProvider for an unknown name."""
    names = registry.names()
    if provider is not None and provider not in names:
        raise UnknownProvider(provider)
    out = []
    for name in [provider] if provider else names:
        try:
            out.append(describe(registry.get(name), env, check))
        except registry.ProviderMissing as e:
            out.append(
                {
                    "provider": name,
                    "installed": False,
                    "available": False,
                    "ready": False,
                    "reason": e.reason,
                    "offers": [],
                }
            )
    return out


def refresh(name: str, env: Mapping[str, str]) -> list[Offer]:
    """Fetch `name`'s offers from its API (ProviderError without credentials or on failure)."""
    provider = registry.get(name)
    state = provider.state(env)
    if not state.credentials:
        raise ProviderError(
            f"cannot refresh {name}'s offers: credentials missing ({', '.join(state.missing) or 'unknown'})",
            name,
            f"set {' and '.join(state.missing) or 'its credentials'} in the environment, then run again",
        )
    return provider.refresh_offers(env)
