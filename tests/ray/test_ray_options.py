"""How a step's resources and its ray target's options become its Ray task's options (no cluster)."""

from __future__ import annotations

import dataclasses

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.compiler.plan import PlanStep
from mlops_nocode.runtime.attempt import StepFailure
from mlops_nocode.runtime.executors import ray_conn
from mlops_nocode.spec import load_text

DOCS = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: big, version: 1.0.0}
spec:
  runtime: python
  python: {code: "def main():\\n    return {}\\n"}
  resources: {cpu: 2.5, memory: 3Gi, gpu: 1, custom: {special: 0.5}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: p, version: 1.0.0}
spec:
  steps: [{id: s, uses: playbook/big}]
"""


def step(**options: object) -> PlanStep:
    s = compile_plan("pipeline/p", Index(load_text(DOCS))).steps[0]
    return dataclasses.replace(s, target={"provider": "ray", "options": options})


def test_resources_map_to_ray_and_ray_retries_stay_off() -> None:
    s = step(strategy="spread", node_labels={"zone": "a"})
    opts = ray_conn.task_options(s, ray_conn.options_of(s))
    assert opts["num_cpus"] == 2.5 and opts["num_gpus"] == 1.0
    assert opts["memory"] == 3 * 2**30 and opts["resources"] == {"special": 0.5}
    assert opts["max_retries"] == 0 and opts["retry_exceptions"] is False
    assert opts["scheduling_strategy"] == "SPREAD" and opts["label_selector"] == {"zone": "a"}


def test_a_node_id_pins_the_task() -> None:
    s = step(node_id="ab" * 28, soft=True)
    strategy = ray_conn.task_options(s, ray_conn.options_of(s))["scheduling_strategy"]
    assert strategy.node_id == "ab" * 28 and strategy.soft is True


@pytest.mark.parametrize("bad", ["pack'; rm -rf /", "NONE"])
def test_an_unknown_strategy_is_refused_with_the_choices(bad: str) -> None:
    s = step(strategy=bad)
    with pytest.raises(StepFailure, match="is not one of DEFAULT, SPREAD"):
        ray_conn.task_options(s, ray_conn.options_of(s))


def test_no_address_anywhere_says_where_to_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_conn.address_of({}) == ""
    with pytest.raises(StepFailure, match="set RAY_ADDRESS"):
        ray_conn.connect("")
    assert ray_conn.address_of({"address": " 10.0.0.5:6379 "}) == "10.0.0.5:6379"


def test_same_cluster_compares_ports_and_local_hosts() -> None:
    assert ray_conn._same_cluster("127.0.0.1:6379", "localhost:6379")
    assert not ray_conn._same_cluster("127.0.0.1:6379", "127.0.0.1:6380")
    assert not ray_conn._same_cluster("10.9.9.9:6379", "127.0.0.1:6379")
