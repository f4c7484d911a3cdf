"""The provider registry: lazy modules, missing ones as a reason, registered objects; `local` as data."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.providers import local, registry
from mlops_nocode.providers.base import Deployment, LaunchSpec, Provider
from mlops_nocode.spec.values import memory_bytes
from tests.fixtures.providers import SheetProvider


def test_every_known_provider_is_listed_and_local_is_installed() -> None:
    assert registry.names()[:5] == ["local", "k3s", "exoscale", "vastai", "runpod"]
    assert isinstance(registry.get("local"), Provider)
    assert "local" in [p.name for p in registry.installed()]


def test_a_module_not_present_is_not_installed_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "mars", "pricing"))
    monkeypatch.setattr(registry, "_loaded", {})
    with pytest.raises(registry.ProviderMissing, match="not installed in this version: its module is not"):
        registry.get("mars")
    with pytest.raises(registry.ProviderMissing, match="exposes no PROVIDER named 'pricing'"):
        registry.get("pricing")
    assert registry.missing()["mars"] == "its module is not part of this version"
    with pytest.raises(registry.ProviderMissing, match="known providers"):
        registry.get("../../etc")


def test_registered_providers_win_and_hidden_ones_go_missing() -> None:
    fake = SheetProvider("runpod")
    with registry.override([fake], hide=["k3s"]):
        assert registry.get("runpod") is fake
        assert "k3s" in registry.missing() and "k3s" in registry.names()
        with pytest.raises(registry.ProviderMissing):
            registry.get("k3s")
    assert registry.get("local") is not None and "runpod" not in registry._registered


def test_local_provider_is_this_machine_and_provisions_nothing(tmp_path: Path) -> None:
    p = registry.get("local")
    assert p.features.provisions is False and p.features.iac == "none"
    assert "container" not in p.features.unsupported
    assert {"python", "command", "container", "http", "terraform", "ansible"} <= p.features.runtimes
    assert "ansible" not in p.features.unsupported
    [offer] = p.offers()
    caps = local.capabilities()
    assert (offer.id, offer.vcpus, offer.price_per_hour, offer.gpu_count) == ("this-machine", caps.cpus, 0, 0)
    assert p.state({}).ready
    plan = Plan("pipeline/p@1.0.0", {}, (), {})
    bundle = p.render(Deployment("r", "local", "local", None, {}, (), plan))
    assert bundle.files == {} and bundle.resources == () and bundle.price_per_hour == 0
    done = p.provision(bundle, tmp_path, {})
    p.launch(done, LaunchSpec("{}", "http://127.0.0.1:1", ()), {})
    p.teardown(done, {})
    p.teardown(done, {})  # twice is fine
    assert list(tmp_path.iterdir()) == []
    assert memory_bytes("2Gi") == 2**31 and memory_bytes("1.5K") == 1500
