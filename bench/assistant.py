"""The assistant's own overhead per validation-and-repair cycle, the model's time excluded: answers come
instantly from an in-process stand-in. Case: a 20-step pipeline (load, split, 9 trainings, 9
evaluations) answered first with a dangling wire, then repaired; one cycle is reading an answer
(extraction, guard, compile check, placement, diff) and, when refused, building the repair message.

Baseline measured in the same run: a bare `mlops validate` of the same spec text (load_text, then the
compiler's validate_graphs with placement), so the ratio is what the assistant adds to a validation.
Target: < 50 ms per cycle. Run: `python -m bench.assistant` (uses a scratch MLOPS_HOME).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from bench.harness import best_of, row, show

ESTIMATORS = ["logistic_regression", "random_forest", "gradient_boosting", "svm", "knn", "decision_tree"]


def twenty_steps() -> str:
    steps = [
        "    - {id: load, uses: playbook/sklearn-dataset@1.0.0, with: {name: iris}}",
        "    - {id: split, uses: playbook/train-test-split, inputs: {dataset: load.dataset}}",
    ]
    for i in range(9):
        est = ESTIMATORS[i % len(ESTIMATORS)]
        with_ = f"{{estimator: {est}, random_state: {i}}}"
        wire = "{dataset: split.train}"
        steps.append(f"    - {{id: train-{i}, uses: playbook/sklearn-train, with: {with_}, inputs: {wire}}}")
        steps.append(
            f"    - {{id: eval-{i}, uses: playbook/evaluate-classifier,"
            f" inputs: {{model: train-{i}.model, dataset: split.test}}}}"
        )
    return (
        "apiVersion: mlops-nocode/v1\nkind: Pipeline\n"
        "metadata: {name: many-models, version: 1.0.0, description: Nine classifiers on iris}\n"
        "spec:\n  steps:\n" + "\n".join(steps) + "\n  outputs: {best: eval-0.metrics}\n"
    )


def main(quick: bool = False) -> list[dict[str, Any]]:
    before = os.environ.get("MLOPS_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["MLOPS_HOME"] = home
        try:
            return _measure(quick)
        finally:
            if before is None:
                os.environ.pop("MLOPS_HOME", None)
            else:
                os.environ["MLOPS_HOME"] = before


def _measure(quick: bool) -> list[dict[str, Any]]:
    from mlops_nocode.ai.assistant import Assistant
    from mlops_nocode.ai.snapshot import Snapshot
    from mlops_nocode.catalogue.service import Catalogues
    from mlops_nocode.compiler.check import check_doc, validate_graphs
    from mlops_nocode.providers.placement import placement_problems
    from mlops_nocode.spec import load_text

    spec = twenty_steps()
    broken = spec.replace("model: train-8.model", "model: train-8.models")
    cats = Catalogues.configured(check_doc)
    resolver = cats.resolver()
    t = time.perf_counter()
    assistant = Assistant(resolver, lambda m: "", placement=placement_problems)
    assistant.context()
    t_context = time.perf_counter() - t

    def validate() -> None:
        docs = load_text(spec, "spec.yaml")
        validate_graphs(docs, docs[0], resolver, {}, placement_problems)

    frozen = Snapshot(resolver)

    def validate_frozen() -> None:
        docs = load_text(spec, "spec.yaml")
        validate_graphs(docs, docs[0], frozen, {}, placement_problems)

    answers: list[str] = []

    def stand_in(messages: list[dict[str, Any]]) -> str:
        return answers.pop(0)

    assistant.model = stand_in

    def repair_cycle() -> None:
        answers[:] = [f"```yaml\n{broken}```", f"```yaml\n{spec}```"]
        result = assistant.write("nine classifiers on iris, each evaluated", "pipeline")
        assert result.valid and result.repairs == 1, result.problems

    validate()
    validate_frozen()
    repair_cycle()  # warm: imports, the catalogue's snapshot
    repeat = 5 if quick else 20
    t_validate = best_of(validate, repeat)
    t_frozen = best_of(validate_frozen, repeat)
    t_two = best_of(repair_cycle, repeat)
    rows = [
        row("bare validate of the 20-step spec (baseline)", t_validate, 1),
        row("validate against one catalogue snapshot (compile only)", t_frozen, 1, t_validate, "validate"),
        row(
            "assistant: refused answer + repair + valid answer, per cycle",
            t_two / 2,
            1,
            t_validate,
            "validate",
        ),
        row("catalogue context (once per assistant)", t_context, 1),
    ]
    show("assistant overhead per validation and repair cycle (model time excluded)", rows)
    per_cycle_ms = 1000 * t_two / 2
    print(f"\nper cycle: {per_cycle_ms:.1f} ms (target < 50 ms)")
    return rows


if __name__ == "__main__":
    main("--quick" in sys.argv)
