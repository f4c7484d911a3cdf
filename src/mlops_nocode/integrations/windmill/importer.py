"""A Windmill flow back into a Pipeline spec, when its modules are our gateway calls or our Python scripts.

What has no equivalent (other scripts, loops, branch-one, JavaScript the exporter does not write) is
refused with located problems: the JSON path of the module in the flow, what it is, and what to do.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mlops_nocode.integrations.windmill.export import (
    DEPLOY_ID,
    FOLDER,
    OUTPUTS_ID,
    PARAM_RE,
    WAIT_ID,
)
from mlops_nocode.integrations.windmill.pyscript import MARKER
from mlops_nocode.spec import Problem, Ref, RefError

_Q = r'"(?:[^"\\]|\\.)*"'  # a JSON string
_ENTRY = re.compile(rf"\s*({_Q}):\s*results\[({_Q})\](?:\.outputs)?\[({_Q})\]\s*")
_FLOW_PARAM = re.compile(rf"^flow_input\[({_Q})\](?: \?\? .*)?$", re.S)  # `?? default`: the spec's own
_SUMMARY_REF = re.compile(r"^((?:meta)?pipeline/[a-z0-9-]+@[0-9A-Za-z.+-]+)\b")
FIX = "keep modules made by `mlops windmill export`, or rebuild this part of the flow in a pipeline spec"


def _step_id(module_id: str) -> str:
    return module_id.removeprefix("step_").replace("_", "-")


def _wiring(expr: str, where: str, problems: list[Problem]) -> dict[str, str]:
    """`({"name": results["step_x"].outputs["out"], ...})` back into `{name: "x.out"}`."""
    body = expr.strip()
    if not (body.startswith("({") and body.endswith("})")):
        problems.append(Problem(f"expression {body[:80]!r} is not an object of step results", where, FIX))
        return {}
    inner = body[2:-2].strip()
    out: dict[str, str] = {}
    if not inner:
        return out
    for part in re.split(rf",(?=\s*{_Q}:\s*results\[)", inner):
        m = _ENTRY.fullmatch(part)
        if not m:
            problems.append(Problem(f"{part.strip()[:80]!r} is not a step result", where, FIX))
            continue
        name, module, output = (json.loads(g) for g in m.groups())
        out[name] = f"{_step_id(module)}.{output}"
    return out


def _static(transforms: dict[str, Any], name: str, where: str, problems: list[Problem]) -> Any:
    t = transforms.get(name)
    if not isinstance(t, dict) or t.get("type") != "static":
        problems.append(Problem(f"{name!r} must be a static value", f"{where}.input_transforms.{name}", FIX))
        return None
    return t.get("value")


def _param(t: Any, where: str, problems: list[Problem]) -> Any:
    if isinstance(t, dict) and t.get("type") == "static":
        v = t.get("value")
        prefix = f"$var:{FOLDER}/"
        if isinstance(v, str) and v.startswith(prefix) and v[len(prefix) :].isidentifier():
            return "${{ secrets." + v[len(prefix) :] + " }}"
        return v
    if isinstance(t, dict) and t.get("type") == "javascript" and (m := _FLOW_PARAM.match(str(t.get("expr")))):
        name = json.loads(m.group(1))
        if PARAM_RE.match("${{ params." + name + " }}"):
            return "${{ params." + name + " }}"
    problems.append(Problem("a value that is neither static nor a flow input", where, FIX))
    return None


def _gateway_step(module: dict[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    tr = module["value"].get("input_transforms") or {}
    step: dict[str, Any] = {
        "id": _static(tr, "step", where, problems),
        "uses": _static(tr, "uses", where, problems),
    }
    if with_ := _static(tr, "with_", where, problems):
        step["with"] = with_
    inputs = tr.get("inputs", {"type": "javascript", "expr": "({})"})
    if inputs.get("type") != "javascript":
        problems.append(
            Problem("inputs must be an expression of step results", f"{where}.input_transforms.inputs", FIX)
        )
    elif wired := _wiring(str(inputs.get("expr")), f"{where}.input_transforms.inputs", problems):
        step["inputs"] = wired
    if "depends_on" in tr:
        step["depends_on"] = _static(tr, "depends_on", where, problems)
    if "options" in tr:
        step |= _static(tr, "options", where, problems) or {}
    return step


def _script_step(module: dict[str, Any], where: str, problems: list[Problem]) -> dict[str, Any]:
    value = module["value"]
    first = str(value.get("content", "")).split("\n", 1)[0]
    try:
        head = json.loads(first.removeprefix(MARKER)) if first.startswith(MARKER) else None
    except json.JSONDecodeError:
        head = None
    if (
        not isinstance(head, dict)
        or not isinstance(head.get("id"), str)
        or not isinstance(head.get("uses"), str)
    ):
        problems.append(
            Problem(
                "a Python script that `mlops windmill export` did not write", f"{where}.value.content", FIX
            )
        )
        return {}
    step: dict[str, Any] = {"id": head["id"], "uses": head["uses"]}
    with_: dict[str, Any] = {}
    inputs: dict[str, str] = {}
    for name, t in (value.get("input_transforms") or {}).items():
        at = f"{where}.value.input_transforms.{name}"
        if name == "mlops_depends_on":
            step["depends_on"] = t.get("value")
        elif name == "mlops_options":
            step |= t.get("value") or {}
        elif t.get("type") == "javascript" and str(t.get("expr", "")).startswith("results["):
            inputs |= _wiring("({" + json.dumps(name) + ": " + t["expr"] + "})", at, problems)
        else:
            with_[name] = _param(t, at, problems)
    if with_:
        step["with"] = with_
    if inputs:
        step["inputs"] = inputs
    return step


def _steps(
    modules: list[Any], where: str, problems: list[Problem], found: dict[str, Any]
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for i, module in enumerate(modules):
        at = f"{where}[{i}]"
        value = module.get("value") if isinstance(module, dict) else None
        if not isinstance(value, dict):
            problems.append(Problem("a module without a value", at, FIX))
            continue
        kind, mid = value.get("type"), module.get("id")
        path = value.get("path")
        if kind == "branchall":
            for b, branch in enumerate(value.get("branches") or []):
                steps += _steps(
                    branch.get("modules") or [], f"{at}.value.branches[{b}].modules", problems, found
                )
        elif kind == "script" and path == f"{FOLDER}/deploy" and mid == DEPLOY_ID:
            found["deploy"] = (value.get("input_transforms") or {}, at)
        elif kind == "script" and path == f"{FOLDER}/wait" and mid == WAIT_ID:
            found["outputs"] = _static(value.get("input_transforms") or {}, "outputs", at, problems)
        elif kind == "script" and path == f"{FOLDER}/wait_step":
            steps.append(_gateway_step(module, at, problems))
        elif kind == "rawscript" and value.get("language") == "python3" and mid == OUTPUTS_ID:
            t = (value.get("input_transforms") or {}).get("outputs") or {}
            found["outputs"] = _wiring(
                str(t.get("expr", "")), f"{at}.value.input_transforms.outputs", problems
            )
        elif kind == "rawscript" and value.get("language") == "python3":
            steps.append(_script_step(module, at, problems))
        else:
            what = f"a {kind} module" + (f" ({path})" if path else "")
            problems.append(Problem(f"{what} has no equivalent in a pipeline spec", at, FIX))
    return steps


def import_flow(flow: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The Pipeline (or MetaPipeline) document of `flow`, or None and every problem found."""
    problems: list[Problem] = []
    found: dict[str, Any] = {}
    value = flow.get("value") if isinstance(flow, dict) else None
    modules = value.get("modules") if isinstance(value, dict) else None
    if not isinstance(value, dict) or not isinstance(modules, list):
        return None, [
            Problem("not a Windmill flow: no value.modules list", "value.modules", "give an OpenFlow file")
        ]
    for special in ("failure_module", "preprocessor_module"):
        if value.get(special):
            problems.append(
                Problem(f"a {special} has no equivalent in a pipeline spec", f"value.{special}", FIX)
            )
    steps = _steps(modules, "value.modules", problems, found)
    ref_text, target = None, None
    if "deploy" in found:
        tr, at = found["deploy"]
        ref_text = _static(tr, "pipeline", at, problems)
        target = _static(tr, "target", at, problems)
    elif m := _SUMMARY_REF.match(str(flow.get("summary", ""))):
        ref_text = m.group(1)
    try:
        ref = Ref.parse(str(ref_text))
        if ref.kind not in ("pipeline", "metapipeline") or not ref.version:
            raise RefError("not a pipeline ref with a version")
    except RefError:
        problems.append(
            Problem(
                "the flow does not name its pipeline",
                "summary",
                "start the summary with pipeline/NAME@VERSION",
            )
        )
        return None, problems
    if problems:
        return None, problems
    schema = {k: v for k, v in (flow.get("schema") or {}).items() if k != "$schema"}
    if schema.get("required") == []:
        del schema["required"]
    spec: dict[str, Any] = {"parameters": schema or {"type": "object", "properties": {}}}
    if target:
        spec["target"] = target
    spec["steps"] = steps
    if found.get("outputs"):
        spec["outputs"] = found["outputs"]
    doc = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline" if ref.kind == "pipeline" else "MetaPipeline",
        "metadata": {"name": ref.name, "version": ref.version, "description": flow.get("description", "")},
        "spec": spec,
    }
    return doc, []
