"""Playbooks that carry their Python source (`python.code`): run by the same step machinery as modules."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import compile_plan
from mlops_nocode.compiler.plan import Plan, PlanError
from mlops_nocode.runtime.events import Event
from mlops_nocode.runtime.runner import Runner
from mlops_nocode.spec import SpecError, load_text

CODE = """
import json

def main(ctx, text: str, factor: int = 2):
    with open(text) as f:  # a text input arrives as the path of a JSON file holding its value
        words = json.load(f).split()
    ctx.log.info("counted %d words", len(words))
    ctx.metric("words", len(words) * factor)
    path = ctx.output_dir / "words.json"
    path.write_text(json.dumps(words))
    return {"count": len(words) * factor, "words": str(path)}
"""


def docs(code: str = CODE, entry: str = "") -> str:
    python = {"code": code, **({"entrypoint": entry} if entry else {})}
    return f"""
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: count-words, version: 1.0.0}}
spec:
  runtime: python
  python: {json.dumps(python)}
  inputs: {{text: {{type: text}}}}
  outputs: {{count: {{type: json}}, words: {{type: file}}}}
  parameters: {{type: object, properties: {{factor: {{type: integer, default: 2}}}}}}
---
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {{name: say, version: 1.0.0}}
spec:
  runtime: python
  python:
    code: "def main():\\n    return {{'text': 'one two three'}}\\n"
  outputs: {{text: {{type: text}}}}
---
apiVersion: mlops-nocode/v1
kind: Pipeline
metadata: {{name: words, version: 1.0.0}}
spec:
  steps:
    - {{id: say, uses: playbook/say}}
    - {{id: count, uses: playbook/count-words, with: {{factor: 3}}, inputs: {{text: say.text}}}}
  outputs: {{count: count.count, words: count.words}}
"""


def test_inline_code_runs_with_the_step_contract(tmp_path: Path) -> None:
    plan = compile_plan("pipeline/words", Index(load_text(docs())))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, home=tmp_path).run()
    assert result.status == "succeeded", result.error
    assert result.outputs["count"] == 9
    assert any(e.type == "metric" and e.step == "count" and e.data["value"] == 9 for e in events)
    assert any(e.type == "log" and e.step == "count" and "counted 3 words" in e.data["line"] for e in events)


def test_plan_file_carries_the_code_to_another_runner(tmp_path: Path) -> None:
    """A remote Runner gets only the plan: the source travels in it, nothing is imported by name."""
    plan = compile_plan("pipeline/words", Index(load_text(docs())))
    plan.dump(tmp_path / "plan.json")
    data = json.loads((tmp_path / "plan.json").read_text())
    step = data["steps"][1]
    assert step["entrypoint"] == "main" and "ctx.metric" in data["sources"][step["code"]["sha256"]]
    loaded = Plan.load(tmp_path / "plan.json")
    result = Runner(loaded, home=tmp_path / "home").run()
    assert result.status == "succeeded", result.error
    assert result.outputs["count"] == 9


def test_a_failing_step_shows_its_own_line_in_the_log(tmp_path: Path) -> None:
    code = "def main(ctx, text, factor):\n    x = 1\n    raise ValueError('bad ' + open(text).read())\n"
    plan = compile_plan("pipeline/words", Index(load_text(docs(code))))
    events: list[Event] = []
    result = Runner(plan, sink=events.append, home=tmp_path).run()
    assert result.status == "failed"
    lines = [e.data.get("line", "") for e in events if e.type == "log" and e.step == "count"]
    assert any("line 3, in main" in line for line in lines), lines
    assert any('ValueError: bad "one two three"' in line for line in lines), lines


def test_syntax_error_is_a_located_problem_not_a_traceback() -> None:
    code = "def main(ctx, text):\n    return {'count': (1 +}\n"
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/words", Index(load_text(docs(code))))
    [p] = e.value.problems
    assert p.where == "playbook/count-words@1.0.0 > spec.python.code:2:26"
    assert "syntax error at line 2" in p.what and "Traceback" not in str(p)


def test_a_function_that_cannot_take_an_input_or_parameter_is_located() -> None:
    with pytest.raises(SpecError) as e:
        compile_plan(
            "pipeline/words", Index(load_text(docs("import os\n\ndef main(ctx, text):\n    return {}\n")))
        )
    [p] = e.value.problems
    assert p.where == "playbook/count-words@1.0.0 > spec.python.code:3:1"
    assert "main() does not take 'factor'" in p.what
    compile_plan("pipeline/words", Index(load_text(docs("def main(**kw):\n    return {}\n"))))


def test_missing_function_and_async_function_are_located() -> None:
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/words", Index(load_text(docs(CODE, entry="run"))))
    assert "no top-level function 'run' (functions: main)" in e.value.problems[0].what
    assert e.value.problems[0].where.endswith("spec.python.entrypoint")
    with pytest.raises(SpecError) as e:
        compile_plan("pipeline/words", Index(load_text(docs("async def main(ctx, text):\n    return {}\n"))))
    assert "async" in e.value.problems[0].what


@pytest.mark.parametrize(
    ("python", "message"),
    [
        ({"code": "def main(): pass", "entrypoint": "pkg.mod:main"}, "invalid entrypoint 'pkg.mod:main' for"),
        ({"code": "def main(): pass", "entrypoint": "../x"}, "invalid entrypoint"),
        ({}, "invalid entrypoint ''"),
        ({"code": "x" * (256 * 1024 + 1)}, "more than MAX_PLAYBOOK_CODE_BYTES (262144)"),
    ],
)
def test_bad_python_sections_are_refused(python: dict[str, str], message: str) -> None:
    text = textwrap.dedent(f"""
        apiVersion: mlops-nocode/v1
        kind: Playbook
        metadata: {{name: p}}
        spec: {{runtime: python, python: {json.dumps(python)}}}
        """)
    with pytest.raises(SpecError) as e:
        load_text(text)
    assert message in e.value.problems[0].what
    assert e.value.problems[0].where.endswith("spec.python")
    assert len(str(e.value)) < 2000  # the oversized code is never echoed back


def test_code_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_nocode.spec.limits import limits

    monkeypatch.setenv("MAX_PLAYBOOK_CODE_BYTES", "2048")
    limits.cache_clear()
    try:
        with pytest.raises(SpecError, match="MAX_PLAYBOOK_CODE_BYTES"):
            load_text(docs("def main(ctx, text):\n    return {}\n" + "#" * 3000))
    finally:
        monkeypatch.delenv("MAX_PLAYBOOK_CODE_BYTES")
        limits.cache_clear()


def test_a_plan_holds_each_source_once(tmp_path: Path) -> None:
    """A playbook used by many steps does not multiply the plan's size by its code's."""
    steps = "\n".join(
        f"    - {{id: c{i}, uses: playbook/count-words, inputs: {{text: say.text}}}}" for i in range(40)
    )
    text = docs("def main(ctx, text, factor):\n    return {}\n" + "# padding\n" * 2000)
    text = text[: text.index("    - {id: say")] + "    - {id: say, uses: playbook/say}\n" + steps + "\n"
    plan = compile_plan("pipeline/words", Index(load_text(text)))
    plan.dump(tmp_path / "plan.json")
    size = (tmp_path / "plan.json").stat().st_size
    assert 20_000 < size < 100_000, size  # the 20 KB source once, not 40 times (800 KB)
    loaded = Plan.load(tmp_path / "plan.json")
    assert {s.code for s in loaded.steps if s.id.startswith("c")} == {plan.steps[1].code}
    data = json.loads((tmp_path / "plan.json").read_text())
    data["sources"] = {}
    with pytest.raises(PlanError, match="not among the plan's sources"):
        Plan.from_json(data)
