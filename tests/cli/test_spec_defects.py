"""Defects a new user hit in `mlops validate|plan|run|catalogue save`, each run as a real process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PLAYBOOKS, CliResult

Mlops = Callable[..., CliResult]


def doc(kind: str, name: str, spec: str) -> str:
    head = f"---\napiVersion: mlops-nocode/v1\nkind: {kind}\nmetadata: {{name: {name}, version: 1.0.0}}\n"
    return head + "spec:\n" + spec


def clean_failure(r: CliResult) -> str:
    """A refusal: exit 2, located problems, no traceback."""
    assert r.code == 2, r
    assert "Traceback" not in r.stderr + r.stdout, r
    return r.stderr


def test_pipeline_output_without_a_step_output_is_a_located_problem(
    mlops: Mlops, write_spec: Callable[[str, str], Path]
) -> None:
    f = write_spec(
        PLAYBOOKS + doc("Pipeline", "p", "  steps: [{id: load, uses: playbook/add}]\n  outputs: {d: load}\n")
    )
    for args in (["validate"], ["plan"], ["run"], ["catalogue", "save"]):
        err = clean_failure(mlops(*args, str(f)))
        assert "outputs" in err and "invalid connection 'load'" in err and "STEP_ID.OUTPUT" in err, args


def nested(levels: int) -> str:
    text = PLAYBOOKS + doc("Pipeline", "p0", "  steps: [{id: s, uses: playbook/add}]\n  outputs: {y: s.y}\n")
    for i in range(1, levels):
        text += doc(
            "Pipeline", f"p{i}", f"  steps: [{{id: s, uses: pipeline/p{i - 1}}}]\n  outputs: {{y: s.y}}\n"
        )
    return text


def test_nesting_depth_is_limited_by_a_setting_with_a_clear_error(
    mlops: Mlops, write_spec: Callable[[str, str], Path]
) -> None:
    f = write_spec(nested(500), "deep.yaml")
    err = clean_failure(mlops("validate", str(f)))
    assert "pipelines nested more than 100 levels deep" in err and "MAX_NESTING_DEPTH" in err
    r = mlops("plan", str(f), "--json", env={"MAX_NESTING_DEPTH": "600"})
    assert r.code == 0, r
    [step] = r.json()["steps"]
    assert step["id"] == "s/" * 499 + "s"
    err = clean_failure(mlops("validate", str(f), env={"MAX_NESTING_DEPTH": "lots"}))
    assert "invalid setting MAX_NESTING_DEPTH" in err
    r = mlops("plan", str(write_spec(nested(60), "sixty.yaml")), "--json")
    assert r.code == 0 and len(r.json()["steps"][0]["id"]) == 119, r


REQUIRED = PLAYBOOKS + doc(
    "Pipeline",
    "child",
    """  parameters: {type: object, properties: {x: {type: integer}}, required: [x]}
  steps: [{id: a, uses: playbook/add, with: {n: "${{ params.x }}"}}]
  outputs: {y: a.y}
""",
)


def test_a_required_parameter_is_asked_for_at_launch_not_at_validation(
    mlops: Mlops, write_spec: Callable[[str, str], Path]
) -> None:
    f = write_spec(REQUIRED, "child.yaml")
    assert mlops("validate", str(f)).code == 0
    r = mlops("catalogue", "save", str(f))
    assert r.code == 0, r
    for cmd in ("plan", "run"):
        err = clean_failure(mlops(cmd, str(f)))
        assert "parameter 'x' of pipeline/child is required" in err and "--set x=" in err
        assert "unknown parameter" not in err  # one problem, not its echo in every step
    r = mlops("run", str(f), "--set", "x=3", "--json")
    assert r.code == 0 and r.json()["status"] == "succeeded", r
    parents = doc(
        "Pipeline",
        "gives",
        "  parameters: {type: object, properties: {k: {type: integer}}, required: [k]}\n"
        '  steps: [{id: c, uses: pipeline/child, with: {x: "${{ params.k }}"}}]\n',
    ) + doc("Pipeline", "forgets", "  steps: [{id: c, uses: pipeline/child}]\n")
    g = write_spec(REQUIRED + parents, "parents.yaml")
    err = clean_failure(mlops("validate", str(g)))
    assert "forgets > steps[0] (c) > with.x" in err and "parameter 'x' of pipeline/child is required" in err
    assert "gives" not in err


SHELL = (
    PLAYBOOKS
    + doc(
        "Playbook",
        "greet",
        """  runtime: command
  command:
    argv: [sh, -c, "printf %s VALUE > out.txt", "${{ params.name }}"]
    outputs: {text: out.txt}
  outputs: {text: {type: text}}
  parameters: {type: object, properties: {name: {type: string}}}
""",
    )
    + doc(
        "Pipeline",
        "hello",
        """  parameters: {type: object, properties: {name: {type: string, default: ann}}}
  steps: [{id: g, uses: playbook/greet, with: {name: "${{ params.name }}"}}]
  outputs: {text: g.text}
""",
    )
)


def test_a_parameter_in_a_shell_script_warns_and_shell_quote_makes_it_data(
    mlops: Mlops, write_spec: Callable[[str, str], Path], tmp_path: Path
) -> None:
    unquoted = write_spec(SHELL.replace("VALUE", "${{ params.name }}"), "unquoted.yaml")
    r = mlops("validate", str(unquoted))
    assert r.code == 0, r
    assert "parameter 'name' is substituted into code run by a shell" in r.stderr
    assert "spec.command.argv[2]" in r.stderr and "| shell_quote" in r.stderr
    r = mlops("validate", str(unquoted), "--json")
    [w] = r.json()["warnings"]
    assert w["where"] == "playbook/greet@1.0.0 > spec.command.argv[2]"
    quoted = write_spec(SHELL.replace("VALUE", "${{ params.name | shell_quote }}"), "quoted.yaml")
    r = mlops("validate", str(quoted), "--json")
    assert r.code == 0 and r.json()["warnings"] == [], r
    hostile = "it's $(touch pwned) `touch pwned2`; touch pwned3"
    r = mlops("run", str(quoted), "--set", f"name={hostile}", "--json", cwd=tmp_path)
    assert r.code == 0 and r.json()["status"] == "succeeded", r
    assert r.json()["outputs"]["text"] == hostile
    assert not list(tmp_path.rglob("pwned*")) and not list(Path(r.json()["run_dir"]).rglob("pwned*"))


def test_small_defects(mlops: Mlops, write_spec: Callable[[str, str], Path]) -> None:
    zero = write_spec(
        PLAYBOOKS + doc("Pipeline", "z", "  steps: [{id: a, uses: playbook/add, timeout: 0s}]\n")
    )
    err = clean_failure(mlops("validate", str(zero)))
    assert "spec.steps[0].timeout" in err and "not above 0" in err and "leave timeout out" in err

    open_expr = write_spec(
        PLAYBOOKS
        + doc("Pipeline", "u", '  steps: [{id: a, uses: playbook/call, with: {arg: "${{ params.x"}}]\n'),
        "open.yaml",
    )
    err = clean_failure(mlops("validate", str(open_expr)))
    assert "steps[0] (a) > with.arg" in err and "unterminated expression" in err

    many = PLAYBOOKS + doc(
        "Pipeline",
        "c",
        """  steps:
    - {id: a, uses: playbook/add, inputs: {x: b.y}}
    - {id: b, uses: playbook/add, inputs: {x: a.y}}
    - {id: d, uses: playbook/nosuch}
    - {id: e, uses: playbook/add, with: {n: -1}}
""",
    )
    err = clean_failure(mlops("validate", str(write_spec(many, "many.yaml"))))
    assert "steps form a cycle" in err and "unknown playbook 'nosuch'" in err and "minimum" in err

    optional_input = (
        PLAYBOOKS
        + doc(
            "Pipeline",
            "inner",
            "  inputs: {x: {type: json, optional: true}}\n"
            "  steps: [{id: a, uses: playbook/fit, inputs: {data: inputs.x}}]\n",
        )
        + doc("Pipeline", "outer", "  steps: [{id: i, uses: pipeline/inner}]\n")
        + doc(
            "Playbook",
            "fit",
            '  runtime: python\n  python: {entrypoint: "steps:add"}\n  inputs: {data: {type: json}}\n',
        )
    )
    err = clean_failure(mlops("validate", str(write_spec(optional_input, "opt.yaml"))))
    assert "has no input" not in err
    assert "required input 'data' of playbook/fit@1.0.0 comes from input 'x' of pipeline/inner" in err

    beyond = (
        PLAYBOOKS
        + doc("Playbook", "box", "  runtime: command\n  command: {argv: [echo]}\n  resources: {cpu: 99999}\n")
        + doc("Pipeline", "b", "  steps: [{id: a, uses: playbook/box}]\n")
    )
    err = clean_failure(mlops("validate", str(write_spec(beyond, "beyond.yaml"))))
    assert "needs 99999" in err
    r = mlops("validate", str(write_spec(beyond, "beyond.yaml")), "--json")
    assert {p["where"] for p in json.loads(r.stdout)["problems"]} >= {
        "pipeline/b > steps[0] (a) > resources.cpu"
    }
