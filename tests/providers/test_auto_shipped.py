"""`auto` over the shipped price sheets of the real provider modules: a GPU step lands on the cheapest
fitting GPU offer that can be rented; the k3s sheet's example nodes (a cluster is the user's own) are
left out of `auto` and said so, but an explicit k3s target still uses them."""

from __future__ import annotations

from mlops_nocode.compiler import compile_plan
from mlops_nocode.providers import registry
from mlops_nocode.providers.placement import place
from tests.compiler.test_compile import catalogue, pipeline

GPU = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: gpu-fit, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  resources: {cpu: 2, memory: 8Gi, gpu: 1}
"""


def _placed(target: str) -> dict[str, object]:
    doc = pipeline("p", "- {id: a, uses: playbook/gpu-fit}", f"target: {{provider: {target}}}")
    plan = place(compile_plan("pipeline/p", catalogue(GPU, doc), {}, None), env={})
    placement = plan.step("a").placement
    assert placement is not None
    return placement


def test_auto_puts_a_gpu_step_on_the_cheapest_rentable_gpu_offer() -> None:
    fitting = [
        o
        for p in registry.installed()
        for o in p.offers()
        if o.gpu_count >= 1 and o.vcpus >= 2 and o.memory_gib >= 8 and not o.extra.get("example")
        if "python" in p.features.runtimes
    ]
    cheapest = min(o.price_per_hour for o in fitting)
    placement = _placed("auto")
    assert placement["provider"] != "k3s"
    assert placement["price_per_hour"] == cheapest > 0
    assert "example offers left out" in str(placement["why"])


def test_an_explicit_k3s_target_uses_its_declared_nodes() -> None:
    placement = _placed("k3s")
    assert placement["provider"] == "k3s" and placement["offer"]["gpu_count"] == 1  # type: ignore[index]
