"""`mlops windmill export` / `import`: flows checked by Windmill's own OpenFlow schema and `wmill lint`,
round trips giving back the same plan, parallel levels as branchall, hostile values kept as data."""

from __future__ import annotations

import ast
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_nocode.catalogue import load_folder
from mlops_nocode.catalogue.service import configured_catalogue
from mlops_nocode.integrations.windmill.export import export_flow
from mlops_nocode.integrations.windmill.importer import import_flow
from mlops_nocode.runs.flow import placed_plan
from mlops_nocode.spec import MetaPipeline, Pipeline, SpecError, parse_document

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted([*ROOT.glob("catalogue/pipelines/*.yaml"), *ROOT.glob("catalogue/metapipelines/*.yaml")])
HOSTILE = "x'''\"\"\"); process.exit(1); //\n\\u0000 `$(id)` </script> {{ x }}"

DIAMOND = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: echo-step, version: 1.0.0}
spec:
  runtime: python
  python:
    code: |
      def main(text: str, seen: str = "", ctx=None) -> dict:
          return {"out": seen + "|" + text}
  inputs: {seen: {type: text, optional: true}}
  outputs: {out: {type: text}}
  parameters:
    type: object
    properties: {text: {type: string, default: none}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {name: diamond, version: 1.0.0, description: "DESC"}
spec:
  parameters: {type: object, properties: {word: {type: string, default: hi}}}
  steps:
    - {id: top, uses: playbook/echo-step, with: {text: "${{ params.word }}"}}
    - {id: left, uses: playbook/echo-step, with: {text: HOSTILE_JSON}, inputs: {seen: top.out}}
    - {id: right-side, uses: playbook/echo-step, with: {text: r}, inputs: {seen: top.out}}
    - {id: bottom, uses: playbook/echo-step, inputs: {seen: left.out}, depends_on: [right-side]}
  outputs: {result: bottom.out}
"""


def _diamond(tmp_path: Path) -> Path:
    p = tmp_path / "diamond.yaml"
    text = DIAMOND.replace("DESC", HOSTILE.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
    p.write_text(text.replace("HOSTILE_JSON", json.dumps(HOSTILE)), encoding="utf-8")
    return p


def _load(path: Path) -> tuple[Pipeline | MetaPipeline, Any]:
    docs = load_folder([path])
    catalogue = configured_catalogue(docs)
    root = [d for d in docs if isinstance(d, Pipeline | MetaPipeline)][-1]
    return root, catalogue


def _plan(root: Any, catalogue: Any) -> list[dict[str, Any]]:
    """The placed plan's steps, less `source` (the spec line a step came from: import writes the steps in
    the flow's order, level by level, so the index may differ while the plan is the same)."""
    steps = placed_plan(root, catalogue, {}, None).to_json()["steps"]
    return sorted(({k: v for k, v in s.items() if k != "source"} for s in steps), key=lambda s: s["id"])


def _exportable(mode: str) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in SHIPPED:
        root, catalogue = _load(path)
        try:
            out.append((path, export_flow(root, catalogue, mode)))  # type: ignore[arg-type]
        except SpecError:
            continue
    return out


@pytest.mark.parametrize("mode", ["gateway", "scripts"])
def test_shipped_pipelines_export_to_valid_openflow_and_round_trip(
    mode: str, check_openflow: Callable[[dict[str, Any]], None]
) -> None:
    flows = _exportable(mode)
    assert len(flows) >= (7 if mode == "gateway" else 2)  # every shipped pipeline that runs on its own
    for path, flow in flows:
        check_openflow(flow)
        doc, problems = import_flow(json.loads(json.dumps(flow)))
        assert doc is not None, (path, problems)
        root, catalogue = _load(path)
        assert _plan(parse_document(doc), catalogue) == _plan(root, catalogue), path


def test_a_pipeline_that_takes_inputs_is_refused_with_its_location() -> None:
    root, catalogue = _load(ROOT / "catalogue/pipelines/tabular-classification.yaml")
    with pytest.raises(SpecError) as e:
        export_flow(root, catalogue)
    assert e.value.problems[0].where == "spec.inputs"


def test_parallel_levels_become_branchall(
    tmp_path: Path, check_openflow: Callable[[dict[str, Any]], None]
) -> None:
    root, catalogue = _load(_diamond(tmp_path))
    for mode in ("gateway", "scripts"):
        flow = export_flow(root, catalogue, mode)  # type: ignore[arg-type]
        check_openflow(flow)
        modules = flow["value"]["modules"]
        steps = [m for m in modules if not m["id"].startswith("mlops_")]
        assert [m["id"] for m in steps] == ["step_top", "level_1", "step_bottom"]
        parallel = steps[1]["value"]
        assert parallel["type"] == "branchall" and parallel["parallel"] is True
        assert [b["modules"][0]["id"] for b in parallel["branches"]] == ["step_left", "step_right_side"]
        doc, problems = import_flow(flow)
        assert doc is not None, problems
        assert _plan(parse_document(doc), catalogue) == _plan(root, catalogue)


def test_hostile_values_stay_data_in_the_generated_script(tmp_path: Path) -> None:
    """The hostile text is a parameter value and a description: the Python script still parses, and
    running its `main` (as a Windmill worker would) gives the text back unchanged."""
    root, catalogue = _load(_diamond(tmp_path))
    flow = export_flow(root, catalogue, "scripts")
    assert flow["description"] == HOSTILE
    left = flow["value"]["modules"][1]["value"]["branches"][0]["modules"][0]["value"]
    assert left["input_transforms"]["text"] == {"type": "static", "value": HOSTILE}
    ast.parse(left["content"])
    code = (
        left["content"]
        + "\nimport json, sys\nprint(json.dumps(main(text=json.loads(sys.argv[1]), seen='s')))\n"
    )
    run = subprocess.run(
        ["python3", "-c", code, json.dumps(HOSTILE)], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(run.stdout) == {"out": "s|" + HOSTILE}


def test_names_that_cannot_be_python_arguments_are_refused(tmp_path: Path) -> None:
    p = _diamond(tmp_path)
    p.write_text(
        p.read_text("utf-8").replace("with: {text: r}", 'with: {"not an arg": r, "class": 1}'), "utf-8"
    )
    root, catalogue = _load(p)
    with pytest.raises(SpecError) as e:
        export_flow(root, catalogue, "scripts")
    assert [x.where for x in e.value.problems] == ["steps[2].with.not an arg", "steps[2].with.class"]


def test_an_expression_inside_text_is_refused_in_scripts_mode(tmp_path: Path) -> None:
    p = _diamond(tmp_path)
    p.write_text(
        p.read_text("utf-8").replace("with: {text: r}", 'with: {text: "a-${{ params.word }}"}'), "utf-8"
    )
    root, catalogue = _load(p)
    with pytest.raises(SpecError) as e:
        export_flow(root, catalogue, "scripts")
    assert [x.where for x in e.value.problems] == ["steps[2].with.text"]
    export_flow(root, catalogue, "gateway")  # the gateway resolves it


def test_exported_flows_pass_wmill_lint(mlops: Any, wmill: Path, tmp_path: Path) -> None:
    out = tmp_path / "ws"
    for path, mode in [
        (SHIPPED[0], "gateway"),
        (ROOT / "catalogue/pipelines/sales-forecast.yaml", "scripts"),
    ]:
        r = mlops("windmill", "export", str(path), "--mode", mode, "--out", str(out / mode))
        assert r.code == 0, r
    lint = subprocess.run(
        [str(wmill), "lint", ".", "--json", "--fail-on-warn"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = json.loads(lint.stdout[lint.stdout.index("{") :])
    assert lint.returncode == 0 and report["validFiles"] == 2 == report["validatedFiles"], lint.stdout


def test_wmill_lint_catches_a_broken_flow(wmill: Path, tmp_path: Path) -> None:
    """The lint check is not vacuous: a module without its path is an error."""
    folder = tmp_path / "f" / "mlops" / "broken.flow"
    folder.mkdir(parents=True)
    folder.joinpath("flow.yaml").write_text(
        "summary: x\nvalue:\n  modules:\n    - id: a\n      value: {type: script}\n"
    )
    lint = subprocess.run(
        [str(wmill), "lint", ".", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert lint.returncode == 1 and "missing required property 'path'" in lint.stdout


def test_import_refuses_what_has_no_equivalent_with_module_paths(mlops: Any, tmp_path: Path) -> None:
    flow = {
        "summary": "pipeline/x@1.0.0",
        "value": {
            "modules": [
                {"id": "a", "value": {"type": "forloopflow", "modules": [], "iterator": {"type": "static"}}},
                {
                    "id": "b",
                    "value": {
                        "type": "branchall",
                        "branches": [
                            {
                                "modules": [
                                    {
                                        "id": "c",
                                        "value": {
                                            "type": "script",
                                            "path": "u/me/other",
                                            "input_transforms": {},
                                        },
                                    }
                                ]
                            }
                        ],
                    },
                },
                {
                    "id": "step_d",
                    "value": {
                        "type": "rawscript",
                        "language": "python3",
                        "content": "def main(): 1",
                        "input_transforms": {},
                    },
                },
            ],
            "failure_module": {"id": "failure", "value": {"type": "identity"}},
        },
    }
    doc, problems = import_flow(flow)
    assert doc is None
    assert [p.where for p in problems] == [
        "value.failure_module",
        "value.modules[0]",
        "value.modules[1].value.branches[0].modules[0]",
        "value.modules[2].value.content",
    ]
    f = tmp_path / "flow.json"
    f.write_text(json.dumps(flow))
    r = mlops("windmill", "import", str(f))
    assert r.code == 2 and "Traceback" not in r.stderr and "value.modules[0]" in r.stderr


def test_import_cli_writes_a_spec_that_validates(mlops: Any, tmp_path: Path) -> None:
    r = mlops("windmill", "export", "pipeline/iris-classifier", "--format", "yaml")
    assert r.code == 0, r
    flow = tmp_path / "flow.yaml"
    flow.write_text(r.stdout)
    spec = tmp_path / "back.yaml"
    r = mlops("windmill", "import", str(flow), "--out", str(spec))
    assert r.code == 0, r
    assert yaml.safe_load(spec.read_text())["metadata"]["name"] == "iris-classifier"
    assert mlops("validate", str(spec)).code == 0
    r = mlops("windmill", "import", str(tmp_path / "missing.json"))
    assert r.code == 2 and "Traceback" not in r.stderr


def test_import_refuses_an_alias_bomb_and_duplicate_keys(mlops: Any, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb.write_text("\n".join(lines) + "\n")
    dup = tmp_path / "dup.json"
    dup.write_text('{"summary": "a", "summary": "b", "value": {"modules": []}}')
    for path in (bomb, dup):
        r = mlops("windmill", "import", str(path), timeout=60)
        assert r.code == 2 and "Traceback" not in r.stderr, r


def test_the_tools_script_fails_clearly_without_npm(tmp_path: Path) -> None:
    done = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "windmill-tools.sh")],
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "need npm" in done.stderr
