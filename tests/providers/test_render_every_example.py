"""Every shipped example pipeline and meta-pipeline renders on every target through the one flow
(`runs.flow`: compile → place → render, what `mlops plan --target` does), creating nothing: each
deployment gets a bundle with files, the resources it would create and a price, and no bundle holds
a secret value set in the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.compiler import compile_plan
from mlops_nocode.providers import registry
from mlops_nocode.runs.flow import place, render
from mlops_nocode.spec import SpecError

ROOT = Path(__file__).resolve().parents[2] / "catalogue"
TARGETS = ("k3s", "exoscale", "runpod", "vastai")
SECRETS = {
    "EXOSCALE_API_KEY": "EXOtest-key-3f9a0c2d4e5b6a71",
    "EXOSCALE_API_SECRET": "exo-secret-9d8c7b6a5f4e3d2c",
    "RUNPOD_API_KEY": "rpa_TESTKEY0123456789abcdef",
    "VAST_API_KEY": "vast-test-key-0123456789abcdef",
    "ARTIFACT_STORE_SECRET_KEY": "s3-secret-abcdef0123456789",
}


def _refs() -> list[str]:
    return [  # a pipeline that needs inputs runs inside a meta-pipeline only: it is rendered there
        f"{kind[:-1]}/{p.stem}"
        for kind in ("pipelines", "metapipelines")
        for p in sorted((ROOT / kind).glob("*.yaml"))
        if not yaml.safe_load(p.read_text())["spec"].get("inputs")
    ]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("ref", _refs())
def test_every_example_renders_on_every_target(
    ref: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    launch = {"provider": target, "options": {}}
    compiled = compile_plan(ref, configured_catalogue([]), {}, launch)
    launched = [s for s in compiled.steps if s.target.get("provider") == target]  # not the pinned ones
    unrunnable = sorted({s.runtime for s in launched} - registry.get(target).features.runtimes)
    if unrunnable:  # e.g. terraform and ansible steps run on local targets only: refused, with why
        with pytest.raises(
            SpecError, match=f"uses runtime '({'|'.join(unrunnable)})', which {target} cannot"
        ):
            place(compiled, launch)
        return
    plan = place(compiled, launch)
    pinned = {s.id for s in compiled.steps} - {s.id for s in launched}  # e.g. a serve step pinned to local
    assert {s.placement["provider"] for s in plan.steps if s.placement and s.id not in pinned} == {target}
    rendered = render(plan)
    assert rendered.bundles and all(b.provider == target or pinned for b in rendered.bundles)
    for bundle in (b for b in rendered.bundles if b.provider == target):
        assert bundle.files and bundle.resources and bundle.price_per_hour >= 0
    text = json.dumps(rendered.to_json())
    assert not [name for name, value in SECRETS.items() if value in text]
