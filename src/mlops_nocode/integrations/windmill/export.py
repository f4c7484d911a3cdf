"""A Pipeline rendered as a Windmill flow (OpenFlow), one module per step, its graph mirroring the DAG.

Two modes:
- `gateway`: a first module deploys the pipeline through our gateway (the script `f/mlops/deploy`); then
  one module per step (`f/mlops/wait_step`) follows that step of the run and returns its outputs; a last
  module (`f/mlops/wait`) waits for the run's end and fails the flow when the run fails.
- `scripts`: every step is an inline Windmill Python script (the playbook's code or an import of its
  entrypoint) with its parameters and inputs mapped by `input_transforms`; only Python playbooks can.

Windmill runs a flow's modules in sequence; steps at the same depth of the DAG (see graph.levels) become
the branches of one `branchall` module run in parallel, so a step starts after every step it needs.
Gateway URL and key are Windmill variables (`$var:f/mlops/gateway_url`, `$var:f/mlops/gateway_key`),
never literal values in the flow.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from mlops_nocode.catalogue import Chain
from mlops_nocode.integrations.windmill.graph import levels
from mlops_nocode.integrations.windmill.pyscript import arg_problem, script_for
from mlops_nocode.spec import MetaPipeline, Pipeline, Playbook, Problem, Ref, SpecError
from mlops_nocode.spec.models import Step

Mode = Literal["gateway", "scripts"]
FOLDER = "f/mlops"
URL_VAR = f"$var:{FOLDER}/gateway_url"
KEY_VAR = f"$var:{FOLDER}/gateway_key"
DEPLOY_ID = "mlops_deploy"
WAIT_ID = "mlops_wait"
OUTPUTS_ID = "mlops_outputs"
OUTPUTS_SCRIPT = "def main(outputs: dict) -> dict:\n    return outputs\n"
PARAM_RE = re.compile(r"^\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
SECRET_RE = re.compile(r"^\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def flow_path(pipeline: Pipeline | MetaPipeline) -> str:
    """Where a pipeline's flow lives in a workspace: f/mlops/NAME with `-` as `_`."""
    return f"{FOLDER}/{pipeline.metadata.name.replace('-', '_')}"


def module_id(step_id: str) -> str:
    """The module id of a step: `step_` + the id with `-` as `_` (ids are DNS labels: no `_` to clash)."""
    return "step_" + step_id.replace("-", "_")


def static(value: Any) -> dict[str, Any]:
    return {"type": "static", "value": value}


def js(expr: str) -> dict[str, Any]:
    return {"type": "javascript", "expr": expr}


def result_of(step_id: str, output: str, mode: Mode) -> str:
    """The JavaScript reading one output of a step's module (strings quoted by json.dumps)."""
    base = f"results[{json.dumps(module_id(step_id))}]"
    return f"{base}.outputs[{json.dumps(output)}]" if mode == "gateway" else f"{base}[{json.dumps(output)}]"


def _param_transform(value: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """A `with` value as a transform: a whole `${{ params.X }}` reads the flow input X, falling back to the
    pipeline's default for X (a flow started through the API may omit it)."""
    if isinstance(value, str):
        if m := PARAM_RE.match(value):
            expr = f"flow_input[{json.dumps(m.group(1))}]"
            prop = (parameters.get("properties") or {}).get(m.group(1))
            if isinstance(prop, dict) and "default" in prop:
                expr += f" ?? {json.dumps(prop['default'])}"
            return js(expr)
        if m := SECRET_RE.match(value):
            return static(f"$var:{FOLDER}/{m.group(1)}")
    return static(value)


def step_options(step: Step) -> dict[str, Any]:
    """What a step sets beyond uses/with/inputs/depends_on (its own target, retries, timeout)."""
    return step.model_dump(mode="json", include={"target", "retries", "timeout"}, exclude_none=True)


def wiring_expr(wiring: dict[str, str], mode: Mode) -> str:
    """`{name: "step.output"}` as a JavaScript object reading those outputs from the modules' results."""
    parts = []
    for name, src in wiring.items():
        producer, _, output = src.partition(".")
        parts.append(f"{json.dumps(name)}: {result_of(producer, output, mode)}")
    return "({" + ", ".join(parts) + "})"


def _gateway_module(step: Step) -> dict[str, Any]:
    transforms: dict[str, Any] = {
        "gateway_url": static(URL_VAR),
        "gateway_key": static(KEY_VAR),
        "run_id": js(f"results[{json.dumps(DEPLOY_ID)}].pipeline_id"),
        "step": static(step.id),
        "uses": static(step.uses),
        "with_": static(step.with_),
        "inputs": js(wiring_expr(step.inputs, "gateway")),
    }
    if step.depends_on:
        transforms["depends_on"] = static(step.depends_on)
    if options := step_options(step):
        transforms["options"] = static(options)
    return {
        "id": module_id(step.id),
        "summary": f"{step.id}: {step.uses}"[:200],
        "value": {"type": "script", "path": f"{FOLDER}/wait_step", "input_transforms": transforms},
    }


def _script_module(step: Step, index: int, catalogue: Chain, parameters: dict[str, Any]) -> dict[str, Any]:
    where = f"steps[{index}]"
    doc = catalogue.resolve(Ref.parse(step.uses))
    if not isinstance(doc, Playbook) or doc.spec.runtime != "python" or doc.spec.python is None:
        what = "a pipeline" if not isinstance(doc, Playbook) else f"a playbook of runtime {doc.spec.runtime}"
        raise SpecError(
            Problem(
                f"step {step.id!r} uses {what}: only Python playbooks become Windmill scripts",
                f"{where}.uses",
                "export with --mode gateway (every step then runs through the gateway)",
            )
        )
    transforms: dict[str, Any] = {}
    problems = []
    for name, value in step.with_.items():
        if p := arg_problem(name, f"{where}.with.{name}"):
            problems.append(p)
        transforms[name] = _param_transform(value, parameters)
        if transforms[name]["type"] == "static" and "${{" in json.dumps(value):
            problems.append(
                Problem(
                    "an expression inside a value has no Windmill script equivalent",
                    f"{where}.with.{name}",
                    "give the whole value as one ${{ params.NAME }}, or export with --mode gateway",
                )
            )
    for name, src in step.inputs.items():
        if p := arg_problem(name, f"{where}.inputs.{name}"):
            problems.append(p)
        producer, _, output = src.partition(".")
        transforms[name] = js(result_of(producer, output, "scripts"))
    if doc.spec.python.code is not None and not doc.spec.python.entrypoint.isidentifier():
        problems.append(Problem("entrypoint is not a function name", f"{where}.uses", "fix the playbook"))
    if problems:
        raise SpecError(problems)
    if step.depends_on:  # no data flows, yet the order is kept by the levels; import needs it back
        transforms["mlops_depends_on"] = static(step.depends_on)
    if options := step_options(step):
        transforms["mlops_options"] = static(options)
    content = script_for(step.id, step.uses, doc, list(transforms))
    return {
        "id": module_id(step.id),
        "summary": f"{step.id}: {step.uses}"[:200],
        "value": {
            "type": "rawscript",
            "language": "python3",
            "content": content,
            "input_transforms": transforms,
        },
    }


def _wrap(group: list[dict[str, Any]], level: int) -> dict[str, Any]:
    if len(group) == 1:
        return group[0]
    return {
        "id": f"level_{level}",
        "summary": f"in parallel: {', '.join(m['id'] for m in group)}"[:200],
        "value": {
            "type": "branchall",
            "parallel": True,
            "branches": [{"summary": m["summary"], "modules": [m]} for m in group],
        },
    }


def export_flow(
    pipeline: Pipeline | MetaPipeline,
    catalogue: Chain,
    mode: Mode = "gateway",
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenFlow document of `pipeline` (raises SpecError with located problems in scripts mode)."""
    if pipeline.spec.inputs:
        raise SpecError(
            Problem(
                f"{pipeline.metadata.name} takes inputs ({', '.join(pipeline.spec.inputs)}): it runs only "
                "inside another pipeline, which gives them",
                "spec.inputs",
                "export the pipeline that uses it",
            )
        )
    steps = pipeline.spec.steps
    index = {s.id: i for i, s in enumerate(steps)}
    modules: list[dict[str, Any]] = []
    kind = "pipeline" if isinstance(pipeline, Pipeline) else "metapipeline"
    ref = f"{kind}/{pipeline.metadata.name}@{pipeline.metadata.version}"
    if target is None and pipeline.spec.target is not None:
        target = pipeline.spec.target.model_dump(mode="json", exclude_none=True)
    if mode == "gateway":
        modules.append(
            {
                "id": DEPLOY_ID,
                "summary": f"deploy {ref} through the gateway",
                "value": {
                    "type": "script",
                    "path": f"{FOLDER}/deploy",
                    "input_transforms": {
                        "gateway_url": static(URL_VAR),
                        "gateway_key": static(KEY_VAR),
                        "pipeline": static(ref),
                        "parameters": js("flow_input"),
                        "target": static(target),
                    },
                },
            }
        )
    problems: list[Problem] = []
    for n, group in enumerate(levels(steps)):
        built = []
        for step in group:
            try:
                built.append(
                    _gateway_module(step)
                    if mode == "gateway"
                    else _script_module(step, index[step.id], catalogue, pipeline.spec.parameters)
                )
            except SpecError as e:
                problems += e.problems
        if built:
            modules.append(_wrap(built, n))
    if problems:
        raise SpecError(problems)
    if mode == "gateway":
        modules.append(
            {
                "id": WAIT_ID,
                "summary": "wait for the run's end; fail when it failed",
                "value": {
                    "type": "script",
                    "path": f"{FOLDER}/wait",
                    "input_transforms": {
                        "gateway_url": static(URL_VAR),
                        "gateway_key": static(KEY_VAR),
                        "run_id": js(f"results[{json.dumps(DEPLOY_ID)}].pipeline_id"),
                        "outputs": static(pipeline.spec.outputs),
                    },
                },
            }
        )
    else:
        modules.append(
            {
                "id": OUTPUTS_ID,
                "summary": "the pipeline's outputs",
                "value": {
                    "type": "rawscript",
                    "language": "python3",
                    "content": OUTPUTS_SCRIPT,
                    "input_transforms": {"outputs": js(wiring_expr(pipeline.spec.outputs, "scripts"))},
                },
            }
        )
    value: dict[str, Any] = {"modules": modules}
    if mode == "scripts":
        value["same_worker"] = True  # outputs that are files stay readable by the next steps
    return {
        "summary": f"{ref} ({mode})"[:200],
        "description": pipeline.metadata.description,
        "value": value,
        "schema": _flow_schema(pipeline.spec.parameters),
    }


def _flow_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    schema |= {k: v for k, v in parameters.items() if k not in ("$schema",)}
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema
