"""The catalogue seed: every reference resolves, every wire type-checks, and the pipelines really run.

`CatalogueRunner` is a deliberately tiny interpreter of the spec (parameter defaults, `${{ params.X }}`,
nested pipelines, python playbooks called in-process), so that these tests check the YAML and the
library together without depending on the compiler and runner.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest

from mlops_nocode.runtime.context import StepContext
from mlops_nocode.spec import ARTIFACT_TYPES, Graph, MetaPipeline, Pipeline, Playbook, Ref, load_file

CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue"
EXPR = re.compile(r"\$\{\{\s*params\.([A-Za-z_][\w-]*)\s*\}\}")
Doc = Playbook | Pipeline | MetaPipeline


def load_catalogue() -> dict[tuple[str, str], Doc]:
    docs: dict[tuple[str, str], Doc] = {}
    for path in sorted(CATALOGUE.rglob("*.yaml")):
        for doc in load_file(path):
            assert path.stem == doc.metadata.name, f"{path}: file name must be the document name"
            assert path.parent.name == doc.ref.kind + "s", f"{path}: a {doc.kind} belongs in {doc.ref.kind}s/"
            docs[(doc.ref.kind, doc.metadata.name)] = doc
    return docs


DOCS = load_catalogue()
GRAPHS = {key: doc for key, doc in DOCS.items() if not isinstance(doc, Playbook)}


def resolve(uses: str) -> Doc:
    ref = Ref.parse(uses)
    doc = DOCS.get((ref.kind, ref.name))
    assert doc is not None, f"{uses} is not in the catalogue"
    assert ref.range.allows(doc.metadata.version), f"{uses} does not match version {doc.metadata.version}"
    return doc


def substitute(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = EXPR.fullmatch(value.strip())
        if whole:
            return params[whole[1]]
        return EXPR.sub(lambda m: str(params[m[1]]), value)
    if isinstance(value, list):
        return [substitute(v, params) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    return value


def with_defaults(schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    values = {k: p["default"] for k, p in schema.get("properties", {}).items() if "default" in p}
    values.update(given)
    jsonschema.validate(values, schema)
    return values


def output_type(doc: Doc, name: str) -> str:
    if isinstance(doc, Playbook):
        return doc.spec.outputs[name].type
    step_id, port = doc.spec.outputs[name].split(".", 1)
    step = next(s for s in doc.spec.steps if s.id == step_id)
    return output_type(resolve(step.uses), port)


def input_ports(doc: Doc) -> dict[str, Any]:
    return dict(doc.spec.inputs)


def test_the_catalogue_is_loaded() -> None:
    """The tests parametrized over the catalogue would be silently skipped if it were not found."""
    assert sum(isinstance(d, Playbook) for d in DOCS.values()) >= 10 and len(GRAPHS) >= 5


@pytest.mark.parametrize("key", sorted(GRAPHS), ids=lambda k: f"{k[0]}/{k[1]}")
def test_graph_wiring(key: tuple[str, str]) -> None:
    graph = GRAPHS[key]
    assert graph.metadata.version == "1.0.0" and graph.metadata.description
    schema = graph.spec.parameters
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema.get("additionalProperties") is False
    declared = set(schema.get("properties", {}))
    defaults = with_defaults(schema, {})
    seen: set[str] = set()
    for step in graph.spec.steps:
        child = resolve(step.uses)
        if isinstance(graph, MetaPipeline):
            assert not isinstance(child, Playbook), (
                f"{step.id}: a MetaPipeline step must use a (meta)pipeline"
            )
        used = set(EXPR.findall(json.dumps(step.with_)))
        assert used <= declared, f"{step.id}: unknown parameters {used - declared}"
        with_defaults(child.spec.parameters, substitute(step.with_, defaults))  # keys and types check
        ports = input_ports(child)
        assert set(step.inputs) <= set(ports), (
            f"{step.id}: unknown input ports {set(step.inputs) - set(ports)}"
        )
        missing = {p for p, port in ports.items() if not port.optional} - set(step.inputs)
        assert not missing, f"{step.id}: required inputs not connected: {missing}"
        for port, source in step.inputs.items():
            src_id, src_port = source.split(".", 1)
            if src_id == "inputs":
                src_type = graph.spec.inputs[src_port].type
            else:
                assert src_id in seen, f"{step.id}: {source} is not an earlier step"
                src_step = next(s for s in graph.spec.steps if s.id == src_id)
                src_type = output_type(resolve(src_step.uses), src_port)
            assert src_type == ports[port].type, f"{step.id}.{port}: {src_type} wired to {ports[port].type}"
        seen.add(step.id)
    assert graph.spec.outputs, "a pipeline must expose outputs"
    for name in graph.spec.outputs:
        output_type(graph, name)


class CatalogueRunner:
    """Runs a pipeline of the catalogue in-process, one step after the other, in declaration order."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.calls: list[str] = []

    def run(self, graph: Graph, params: dict[str, Any], inputs: dict[str, Any], path: str) -> dict[str, Any]:
        values = with_defaults(graph.spec.parameters, params)
        results: dict[str, dict[str, Any]] = {}
        for step in graph.spec.steps:
            child = resolve(step.uses)
            step_inputs = {}
            for port, source in step.inputs.items():
                src_id, src_port = source.split(".", 1)
                step_inputs[port] = inputs[src_port] if src_id == "inputs" else results[src_id][src_port]
            step_params = substitute(step.with_, values)
            step_path = f"{path}/{step.id}" if path else step.id
            if isinstance(child, Playbook):
                results[step.id] = self.call(child, step_params, step_inputs, step_path)
            else:
                results[step.id] = self.run(child, step_params, step_inputs, step_path)
        return {
            name: results[s][p]
            for name, (s, p) in ((n, c.split(".", 1)) for n, c in graph.spec.outputs.items())
        }

    def call(
        self, playbook: Playbook, params: dict[str, Any], inputs: dict[str, Any], path: str
    ) -> dict[str, Any]:
        assert playbook.spec.python is not None
        module, name = playbook.spec.python.entrypoint.split(":")
        function = getattr(importlib.import_module(module), name)
        out_dir = self.workdir / path.replace("/", "__")
        out_dir.mkdir(parents=True)
        kwargs = with_defaults(playbook.spec.parameters, params)
        for port, value in inputs.items():
            if playbook.spec.inputs[port].type in ARTIFACT_TYPES:
                kwargs[port] = str(value)
            else:  # values travel between processes as JSON files
                file = self.workdir / f"{path.replace('/', '__')}.{port}.json"
                file.write_text(json.dumps(value))
                kwargs[port] = str(file)
        result = function(
            **kwargs, ctx=StepContext(step_id=path, run_id="catalogue-test", output_dir=out_dir)
        )
        assert set(result) == set(playbook.spec.outputs), f"{path}: returned {sorted(result)}"
        for port, spec in playbook.spec.outputs.items():
            if spec.type in ARTIFACT_TYPES:
                assert Path(result[port]).resolve().is_relative_to(out_dir.resolve()), (
                    f"{path}.{port} outside"
                )
            elif spec.type == "metrics":
                assert all(isinstance(v, float | int) for v in result[port].values()), f"{path}.{port}"
            json.dumps(result[port] if spec.type not in ARTIFACT_TYPES else None)
        self.calls.append(path)
        return result


def test_iris_classifier_runs_with_defaults(tmp_path: Path) -> None:
    runner = CatalogueRunner(tmp_path)
    pipeline = resolve("pipeline/iris-classifier")
    assert isinstance(pipeline, Pipeline)
    out = runner.run(pipeline, {}, {}, "")
    assert runner.calls == ["load", "classify/split", "classify/train", "classify/evaluate", "export"]
    assert out["metrics"]["accuracy"] > 0.9
    card = json.loads((Path(out["bundle"]) / "model_card.json").read_text())
    assert card["name"] == "iris-classifier" and card["metrics"] == out["metrics"]
    assert card["estimator"] == "random_forest"


def test_ml_portfolio_runs_end_to_end(tmp_path: Path) -> None:
    runner = CatalogueRunner(tmp_path)
    portfolio = resolve("metapipeline/ml-portfolio")
    assert isinstance(portfolio, MetaPipeline)
    out = runner.run(portfolio, {"estimator": "logistic_regression", "seed": 42}, {}, "")
    assert "iris/classify/train" in runner.calls and "forecasting/baseline/train" in runner.calls
    assert "anomalies/detect" in runner.calls
    assert out["iris_metrics"]["accuracy"] > 0.9
    assert out["anomaly_metrics"]["roc_auc"] > 0.9 and out["anomaly_metrics"]["precision"] > 0.3
    assert out["forecast_metrics"]["r2"] > 0.5 and out["baseline_metrics"]["r2"] > 0.5
    card = json.loads((Path(out["iris_bundle"]) / "model_card.json").read_text())
    assert card["estimator"] == "logistic_regression"  # the top-level parameter reached the nested step
    predictions = pd.read_parquet(next(tmp_path.glob("anomalies__detect/scored.parquet")))
    assert {"anomaly_score", "predicted_anomaly", "is_anomaly"} <= set(predictions.columns)
