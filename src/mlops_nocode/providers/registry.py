"""Which target providers exist in this installation: one module per provider, imported on first use.

`mlops_nocode.providers.<name>` exposes `PROVIDER`, an object satisfying `providers.base.Provider`. A
module that is absent (or does not expose a usable `PROVIDER`) makes its provider "not installed in this
version": `get` raises `ProviderMissing` with the reason, and placement turns it into a located problem.
Tests (and embedders) may `register` provider objects of their own, which win over the modules.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from mlops_nocode.providers.base import Provider

NAMES: tuple[str, ...] = ("local", "k3s", "exoscale", "vastai", "runpod", "ray")
"""The providers this platform knows, in the order they are listed."""

_registered: dict[str, Provider] = {}
_hidden: set[str] = set()
_loaded: dict[tuple[str, str], Provider | str] = {}  # (name, module) -> its provider, or why it is unusable


class ProviderMissing(LookupError):
    """A provider that this installation does not have (`reason` says why, for the user)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"provider {name!r} is not installed in this version: {reason}")
        self.name, self.reason = name, reason


def plugins() -> dict[str, str]:
    """PROVIDER_MODULES: `{"NAME": "python.module"}` modules whose PROVIDER adds or replaces a provider
    (an operator's setting, never read from a request or a plan)."""
    raw = os.environ.get("PROVIDER_MODULES", "")
    try:
        found = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items()}


def _load(name: str, module_name: str) -> Provider | str:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return "its module is not part of this version"
        return f"its module needs {e.name!r}, which is not installed"
    except ImportError as e:
        return f"its module cannot be imported ({e})"
    provider = getattr(module, "PROVIDER", None)
    if not isinstance(provider, Provider) or getattr(provider, "name", None) != name:
        return f"{module_name} exposes no PROVIDER named {name!r}"
    return provider


def get(name: str) -> Provider:
    """The provider called `name`; ProviderMissing when this installation does not have it."""
    if name in _registered:
        return _registered[name]
    if name in _hidden:
        raise ProviderMissing(name, "its module is not part of this version")
    module_name = plugins().get(name) or f"mlops_nocode.providers.{name}"
    if name not in NAMES and name not in plugins():
        raise ProviderMissing(name, f"known providers: {', '.join(names())}")
    found = _loaded.get((name, module_name))
    if found is None:
        found = _loaded[name, module_name] = _load(name, module_name)
    if isinstance(found, str):
        raise ProviderMissing(name, found)
    return found


def names() -> list[str]:
    """Every provider name this installation knows (installed or not), the built-in ones first."""
    extra = {*_registered, *plugins()} - set(NAMES)
    return [*NAMES, *sorted(extra)]


def installed() -> list[Provider]:
    """The providers that can be used (their module imports and exposes PROVIDER)."""
    found = []
    for name in names():
        try:
            found.append(get(name))
        except ProviderMissing:
            continue
    return found


def missing() -> dict[str, str]:
    """Known providers that are not installed, with why."""
    out = {}
    for name in names():
        try:
            get(name)
        except ProviderMissing as e:
            out[name] = e.reason
    return out


def register(provider: Provider) -> None:
    """Use `provider` for its name from now on (over the module of that name, if any)."""
    _registered[provider.name] = provider


def unregister(name: str) -> None:
    _registered.pop(name, None)


@contextmanager
def override(providers: Iterable[Provider] = (), hide: Iterable[str] = ()) -> Iterator[None]:
    """Within the block, `providers` are registered and the built-in providers named in `hide` are not
    installed (for tests: placement across several providers, a provider missing from a version)."""
    saved, saved_hidden = dict(_registered), set(_hidden)
    try:
        for p in providers:
            register(p)
        for name in hide:
            _registered.pop(name, None)
            _hidden.add(name)
        yield
    finally:
        _registered.clear()
        _registered.update(saved)
        _hidden.clear()
        _hidden.update(saved_hidden)
