"""`mlops n8n export` / `import` and the shipped workflows, without an n8n: round trips giving back the same
plan, the DAG as connections, hostile values kept out of n8n's `{{ }}` expressions, located refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops_nocode.integrations.n8n.export import STEP_MARK, export_workflow, step_name
from mlops_nocode.integrations.n8n.importer import import_workflow
from mlops_nocode.integrations.n8n.nodes import js_literal
from mlops_nocode.integrations.n8n.push import prepare
from mlops_nocode.integrations.n8n.shipped import FILES, render, shipped_dir
from mlops_nocode.spec import parse_document
from tests.integrations.windmill.test_flow_export import HOSTILE, SHIPPED, _diamond, _load, _plan

ROOT = Path(__file__).resolve().parents[3]


def _exported() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in SHIPPED:
        root, _ = _load(path)
        if not root.spec.inputs:
            out.append((path, export_workflow(root)))
    return out


def _expressions(wf: dict[str, Any]) -> list[str]:
    """Every parameter string n8n evaluates (those starting with `=`)."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and v.startswith("="):
            found.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for n in wf["nodes"]:
        walk(n["parameters"])
    return found


def test_shipped_pipelines_export_and_round_trip_to_the_same_plan() -> None:
    workflows = _exported()
    assert len(workflows) >= 7
    for path, wf in workflows:
        doc, problems = import_workflow(json.loads(json.dumps(wf)))
        assert doc is not None, (path, problems)
        root, catalogue = _load(path)
        assert _plan(parse_document(doc), catalogue) == _plan(root, catalogue), path


def test_the_dag_becomes_connections(tmp_path: Path) -> None:
    root, _ = _load(_diamond(tmp_path))
    wf = export_workflow(root)
    links = {(a, link["node"]) for a, c in wf["connections"].items() for out in c["main"] for link in out}
    assert ("Run events", step_name("top")) in links
    assert (step_name("top"), step_name("left")) in links
    assert (step_name("top"), step_name("right-side")) in links
    assert (step_name("left"), step_name("bottom")) in links
    assert (step_name("right-side"), step_name("bottom")) in links
    assert (step_name("bottom"), "End") in links
    names = [n["name"] for n in wf["nodes"]]
    assert len(names) == len(set(names))
    assert all(target in names for _, target in links)


def test_hostile_values_never_open_or_close_an_expression(tmp_path: Path) -> None:
    root, _ = _load(_diamond(tmp_path))
    wf = export_workflow(root, target={"provider": "local", "options": {"x": "}} {{ $env.SECRET }}"}})
    for expr in _expressions(wf):
        blocks = re.findall(r"\{\{(.*?)\}\}", expr[1:], re.S)
        for block in blocks:
            assert "{{" not in block and "$env.SECRET" not in block, block
    assert not any("}} {{" in e for e in _expressions(wf))  # in expressions, hostile braces are escapes
    # the hostile text is still there as data: the import gives it back
    doc, problems = import_workflow(wf)
    assert doc is not None, problems
    left = next(s for s in doc["spec"]["steps"] if s["id"] == "left")
    assert left["with"]["text"] == HOSTILE
    code = next(n for n in wf["nodes"] if n["name"] == step_name("left"))["parameters"]["jsCode"]
    assert code.split("\n", 1)[0].startswith(STEP_MARK) and "\n" not in json.dumps(HOSTILE, ensure_ascii=True)


def test_js_literals_evaluate_back_to_the_value() -> None:
    value = {"a": HOSTILE, "b": [1, None, True, "}}"], "{{x}}": {"$": "`${1}`"}}
    text = js_literal(value)
    assert "{{" not in text and "}}" not in text and "$" not in text
    node = subprocess.run(
        ["node", "-e", f"process.stdout.write(JSON.stringify({text}))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(node.stdout) == value


def test_import_refuses_foreign_nodes_with_their_names(tmp_path: Path) -> None:
    root, _ = _load(_diamond(tmp_path))
    wf = export_workflow(root)
    wf["nodes"].append({"name": "Send mail", "type": "n8n-nodes-base.emailSend", "parameters": {}})
    wf["nodes"].append({"name": "Mine", "type": "n8n-nodes-base.code", "parameters": {"jsCode": "return []"}})
    wf["nodes"].append({"name": "Note", "type": "n8n-nodes-base.stickyNote", "parameters": {}})
    doc, problems = import_workflow(wf)
    assert doc is None
    where = {p.where for p in problems}
    n = len(wf["nodes"])
    assert f"nodes[{n - 3}] ('Send mail')" in where and f"nodes[{n - 2}] ('Mine')" in where
    assert all("Note" not in w for w in where)
    assert import_workflow({"name": "x"})[1][0].where == "nodes"
    assert import_workflow([1, 2])[0] is None


def test_a_pipeline_that_takes_inputs_is_refused(tmp_path: Path) -> None:
    from mlops_nocode.spec import SpecError

    doc = parse_document(
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "inner", "version": "1.0.0"},
            "spec": {"inputs": {"d": {"type": "dataset"}}, "steps": [{"id": "a", "uses": "playbook/x"}]},
        }
    )
    try:
        export_workflow(doc)  # type: ignore[arg-type]
    except SpecError as e:
        assert e.problems[0].where == "spec.inputs"
    else:
        raise AssertionError("a pipeline taking inputs was exported")


def test_the_shipped_files_are_what_the_builder_makes() -> None:
    for file, build in FILES.items():
        assert (shipped_dir() / file).read_text(encoding="utf-8") == render(build()), (
            f"deploy/n8n/{file} is stale: python -m mlops_nocode.integrations.n8n.shipped"
        )


def test_shipped_workflows_hold_no_key_or_url_and_push_writes_only_urls() -> None:
    for file in FILES:
        text = (ROOT / "deploy" / "n8n" / file).read_text(encoding="utf-8")
        wf = json.loads(text)
        assert "127.0.0.1" not in text and "Bearer" not in text and "http://" not in text
        gateway = [n for n in wf["nodes"] if n.get("credentials")]
        assert gateway and all(n["credentials"]["httpHeaderAuth"]["name"] == "MLOps gateway" for n in gateway)
        ready = prepare(wf, "http://gw.example:8000/", "http://hooks.example/x")
        urls = [n["parameters"]["url"] for n in ready["nodes"] if "url" in n["parameters"]]
        assert urls and all(
            u.startswith(("=http://gw.example:8000/", "=http://hooks.example/x")) for u in urls
        )


def test_the_install_script_fails_clearly_without_npm(tmp_path: Path) -> None:
    done = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "n8n-install.sh")],
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "needs npm" in done.stderr
    assert not (tmp_path / ".cache").exists()  # nothing installed, nothing half-made


def test_export_and_import_cli_round_trip_and_refuse_with_locations(tmp_path: Path) -> None:
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}

    def mlops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlops_nocode.cli.main", "n8n", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    out = tmp_path / "wf.json"
    assert mlops("export", str(_diamond(tmp_path)), "-o", str(out)).returncode == 0
    back = mlops("import", str(out), "-o", str(tmp_path / "back.yaml"))
    assert back.returncode == 0, back.stderr
    wf = json.loads(out.read_text())
    wf["nodes"].append({"name": "Slack", "type": "n8n-nodes-base.slack", "parameters": {}})
    out.write_text(json.dumps(wf))
    refused = mlops("import", str(out), "--json")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert any("'Slack'" in p["where"] for p in json.loads(refused.stdout)["problems"])
    missing = mlops("export", "pipeline/no-such-pipeline", "--json")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
