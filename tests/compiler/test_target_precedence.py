"""Where each compiled step runs: nearest explicit step `target:` > launch target > innermost pipeline
document's own `target:` > local (docs/SPEC.md, "Where a step runs")."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_nocode.compiler import compile_plan
from tests.compiler.test_compile import catalogue, pipeline

PREP = pipeline("prep", "- {id: clean, uses: playbook/add}")
TRAIN = pipeline(
    "train",
    "- {id: fit, uses: playbook/add}\n- {id: score, uses: playbook/add, target: {provider: local}}",
    "target: {provider: exoscale, options: {instance_type: standard.small}}",
)
SERVE = pipeline("serve", "- {id: api, uses: playbook/add}", "target: {provider: vastai}")
META = pipeline(
    "portfolio",
    """
- {id: preprocessing, uses: pipeline/prep, target: {provider: local}}
- {id: training, uses: pipeline/train, target: {provider: runpod, options: {gpu_type: A100}}}
- {id: serving, uses: pipeline/serve, target: {provider: k3s}}
- {id: report, uses: pipeline/serve}
""",
    "target: {provider: exoscale}",
    kind="MetaPipeline",
)


def providers(launch: dict[str, Any] | None) -> dict[str, str]:
    plan = compile_plan("metapipeline/portfolio", catalogue(PREP, TRAIN, SERVE, META), {}, launch)
    return {s.id: s.target["provider"] for s in plan.steps}


@pytest.mark.parametrize("launch", [None, {"provider": "local", "options": {}}, {"provider": "auto"}])
def test_heterogeneous_metapipeline_keeps_each_step_target(launch: dict[str, Any] | None) -> None:
    got = providers(launch)
    assert got["preprocessing/clean"] == "local"
    assert got["training/fit"] == "runpod"  # the meta step's target beats the sub-pipeline's own
    assert got["training/score"] == "local"  # the leaf's own target is the nearest of all
    assert got["serving/api"] == "k3s"


def test_launch_target_beats_pipeline_documents_own() -> None:
    assert providers(None)["report/api"] == "vastai"  # innermost document's own target, no launch one
    assert providers({"provider": "local", "options": {}})["report/api"] == "local"


def test_options_travel_with_the_nearest_target() -> None:
    plan = compile_plan("metapipeline/portfolio", catalogue(PREP, TRAIN, SERVE, META), {}, None)
    assert plan.step("training/fit").target == {"provider": "runpod", "options": {"gpu_type": "A100"}}


def test_without_any_target_steps_run_locally() -> None:
    plan = compile_plan("pipeline/prep", catalogue(PREP), {}, None)
    assert plan.step("clean").target == {"provider": "local", "options": {}}
    inner = pipeline("outer", "- {id: p, uses: pipeline/train}")
    plan = compile_plan("pipeline/outer", catalogue(TRAIN, inner), {}, None)
    assert plan.step("p/fit").target["provider"] == "exoscale"  # the innermost document's own
