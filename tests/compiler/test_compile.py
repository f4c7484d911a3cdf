"""The compiler: flattening with namespaces, parameter binding, and every rejection with its message."""

from __future__ import annotations

import textwrap

import pytest

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.spec import SpecError, load_text
from tests.conftest import ADD_PLAYBOOK

ADD = ADD_PLAYBOOK
MODEL = """
apiVersion: mlops-nocode/v1
kind: Playbook
metadata: {name: fit, version: 1.0.0}
spec:
  runtime: python
  python: {entrypoint: "steps:add"}
  inputs: {data: {type: dataset}}
  outputs: {model: {type: model}}
"""


def catalogue(*texts: str) -> Index:
    docs = load_text(ADD.replace("VERSION", "1.0.0")) + load_text(ADD.replace("VERSION", "1.2.0"))
    docs += load_text(MODEL)
    for t in texts:
        docs += load_text(textwrap.dedent(t))
    return Index(docs)


def problems(root: str, *texts: str, **params: object) -> str:
    with pytest.raises(SpecError) as e:
        compile_plan(root, catalogue(*texts), dict(params))
    return str(e.value)


def pipeline(name: str, steps: str, extra: str = "", kind: str = "Pipeline") -> str:
    return f"""
apiVersion: mlops-nocode/v1
kind: {kind}
metadata: {{name: {name}, version: 1.0.0}}
spec:
{textwrap.indent(textwrap.dedent(extra), "  ")}
  steps:
{textwrap.indent(textwrap.dedent(steps), "    ")}
"""


INNER = pipeline(
    "inner",
    """
- {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}, inputs: {x: inputs.x}}
- {id: b, uses: playbook/add@1.0.0, inputs: {x: a.y}}
""",
    """
parameters: {type: object, properties: {n: {type: integer, default: 2}}}
inputs: {x: {type: json}}
outputs: {y: b.y}
""",
)


def test_flattens_nesting_with_namespaced_ids_and_passes_params_down() -> None:
    outer = pipeline(
        "outer",
        """
- {id: first, uses: playbook/add}
- {id: mid, uses: pipeline/inner, with: {n: "${{ params.k }}"}, inputs: {x: first.y}}
- {id: last, uses: pipeline/inner, inputs: {x: mid.y}}
""",
        """
parameters: {type: object, properties: {k: {type: integer, default: 5}}}
outputs: {result: last.y}
""",
        kind="MetaPipeline",
    ).replace("playbook/add}", "pipeline/seed}")
    seed = pipeline("seed", "- {id: s, uses: playbook/add}", "outputs: {y: s.y}")
    plan = compile_plan("metapipeline/outer", catalogue(INNER, outer, seed), {"k": 9})
    ids = [s.id for s in plan.steps]
    assert ids == ["first/s", "mid/a", "mid/b", "last/a", "last/b"]
    by_id = {s.id: s for s in plan.steps}
    assert by_id["mid/a"].params == {"n": 9}
    assert by_id["last/a"].params == {"n": 2}
    assert by_id["mid/a"].inputs["x"].step == "first/s"
    assert by_id["last/a"].inputs["x"].step == "mid/b"
    assert by_id["mid/b"].playbook == "playbook/add@1.0.0"
    assert by_id["first/s"].playbook == "playbook/add@1.2.0"  # latest
    assert plan.outputs["result"].step == "last/b"
    assert Plan.from_json(plan.to_json()) == plan


def test_set_overrides_default_and_type_is_kept() -> None:
    p = pipeline(
        "p",
        '- {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}}',
        "parameters: {type: object, properties: {n: {type: integer, default: 3}}}",
    )
    assert compile_plan("pipeline/p", catalogue(p)).steps[0].params == {"n": 3}
    assert compile_plan("pipeline/p", catalogue(p), {"n": 42}).steps[0].params == {"n": 42}


def test_step_graph_cycle_is_rejected() -> None:
    p = pipeline(
        "loop",
        """
- {id: a, uses: playbook/add, inputs: {x: c.y}}
- {id: b, uses: playbook/add, inputs: {x: a.y}}
- {id: c, uses: playbook/add, inputs: {x: b.y}}
""",
    )
    msg = problems("pipeline/loop", p)
    assert "steps form a cycle" in msg and "a -> " in msg and "pipeline/loop" in msg


def test_ref_cycle_at_depth_is_rejected() -> None:
    a = pipeline("pa", "- {id: s, uses: pipeline/pb}")
    b = pipeline("pb", "- {id: s, uses: pipeline/pc}")
    c = pipeline("pc", "- {id: s, uses: pipeline/pa}")
    msg = problems("pipeline/pa", a, b, c)
    assert (
        "reference cycle: pipeline/pa@1.0.0 -> pipeline/pb@1.0.0 -> pipeline/pc@1.0.0 -> pipeline/pa@1.0.0"
        in msg
    )


def test_dangling_input_unknown_step() -> None:
    p = pipeline("p", "- {id: a, uses: playbook/add, inputs: {x: lod.y}}")
    msg = problems("pipeline/p", p)
    assert "dangling connection 'lod.y': no step 'lod'" in msg
    assert "pipeline/p > steps[0] (a) > inputs.x" in msg


def test_dangling_input_unknown_output() -> None:
    p = pipeline("p", "- {id: a, uses: playbook/add}\n- {id: b, uses: playbook/add, inputs: {x: a.z}}")
    msg = problems("pipeline/p", p)
    assert "step 'a' has no output 'z'" in msg and "use one of its outputs: y" in msg


def test_unknown_ref_suggests_close_name() -> None:
    msg = problems("pipeline/p", pipeline("p", "- {id: a, uses: playbook/ad}"))
    assert "unknown playbook 'ad'" in msg and "did you mean playbook/add" in msg


def test_unknown_version_lists_known_ones() -> None:
    msg = problems("pipeline/p", pipeline("p", "- {id: a, uses: playbook/add@^2}"))
    assert "no version of playbook/add matches '^2'" in msg and "1.0.0, 1.2.0" in msg


def test_duplicate_step_ids() -> None:
    with pytest.raises(SpecError, match="duplicate step id 'a'"):
        load_text(pipeline("p", "- {id: a, uses: playbook/add}\n- {id: a, uses: playbook/add}"))


@pytest.mark.parametrize("bad", ["Bad_Name", "-x", "a" * 64, "with space"])
def test_invalid_names(bad: str) -> None:
    with pytest.raises(SpecError, match="invalid name"):
        load_text(pipeline("p", "- {id: a, uses: playbook/add}").replace("name: p,", f"name: '{bad}',"))


def test_parameter_schema_violation_has_a_path() -> None:
    p = pipeline("p", "- {id: train, uses: playbook/add, with: {n: -3}}")
    msg = problems("pipeline/p", p)
    assert "pipeline/p > steps[0] (train) > with.n" in msg and "-3 is less than the minimum of 0" in msg


def test_unknown_parameter_is_rejected() -> None:
    msg = problems("pipeline/p", pipeline("p", "- {id: a, uses: playbook/add, with: {m: 1}}"))
    assert "unknown parameter 'm'" in msg and "use one of: n" in msg


def test_root_parameter_override_is_validated() -> None:
    p = pipeline(
        "p",
        '- {id: a, uses: playbook/add, with: {n: "${{ params.n }}"}}',
        "parameters: {type: object, properties: {n: {type: integer, default: 1}}}",
    )
    msg = problems("pipeline/p", p, n="many")
    assert "pipeline/p > parameters.n" in msg and "'many' is not of type 'integer'" in msg


def test_type_mismatch_between_ports() -> None:
    p = pipeline("p", "- {id: a, uses: playbook/add}\n- {id: f, uses: playbook/fit, inputs: {data: a.y}}")
    msg = problems("pipeline/p", p)
    assert "type mismatch: input 'data' expects dataset but a.y is json" in msg


def test_required_input_not_connected() -> None:
    msg = problems("pipeline/p", pipeline("p", "- {id: f, uses: playbook/fit}"))
    assert "required input 'data' of playbook/fit@1.0.0 is not connected" in msg


def test_unknown_expression_and_parameter() -> None:
    msg = problems("pipeline/p", pipeline("p", '- {id: a, uses: playbook/add, with: {n: "${{ env.HOME }}"}}'))
    assert "unsupported expression" in msg
    msg = problems("pipeline/p", pipeline("p", '- {id: a, uses: playbook/add, with: {n: "${{ params.q }}"}}'))
    assert "unknown parameter 'q'" in msg


def test_metapipeline_cannot_use_playbook() -> None:
    msg = problems("metapipeline/m", pipeline("m", "- {id: a, uses: playbook/add}", kind="MetaPipeline"))
    assert "a MetaPipeline step must use a pipeline or metapipeline" in msg


def test_secrets_stay_placeholders() -> None:
    pb = ADD.replace("VERSION", "3.0.0").replace("type: integer, default: 1, minimum: 0", "type: string")
    p = pipeline("p", '- {id: a, uses: playbook/add@3.0.0, with: {n: "${{ secrets.TOKEN }}"}}')
    plan = compile_plan("pipeline/p", catalogue(pb, p))
    assert plan.steps[0].params == {"n": "${{ secrets.TOKEN }}"}
    assert plan.steps[0].secrets == ("TOKEN",)


def test_depends_on_a_subpipeline_waits_for_all_its_leaves() -> None:
    outer = pipeline(
        "outer",
        """
- {id: seed, uses: playbook/add}
- {id: sub, uses: pipeline/inner, inputs: {x: seed.y}}
- {id: after, uses: playbook/add, depends_on: [sub]}
""",
    )
    plan = compile_plan("pipeline/outer", catalogue(INNER, outer))
    assert set(plan.step("after").needs) == {"sub/a", "sub/b"}


def test_many_problems_reported_together() -> None:
    p = pipeline("p", "- {id: a, uses: playbook/add, with: {n: -1}}\n- {id: b, uses: playbook/nope}")
    msg = problems("pipeline/p", p)
    assert "minimum of 0" in msg and "unknown playbook 'nope'" in msg


def test_type_mismatch_into_a_subpipeline_input() -> None:
    sub = pipeline(
        "needs-data",
        "- {id: f, uses: playbook/fit, inputs: {data: inputs.data}}",
        "inputs: {data: {type: dataset}}",
    )
    outer = pipeline(
        "outer", "- {id: a, uses: playbook/add}\n- {id: s, uses: pipeline/needs-data, inputs: {data: a.y}}"
    )
    msg = problems("pipeline/outer", sub, outer)
    assert "type mismatch: input 'data' expects dataset but a.y is json" in msg
    assert "pipeline/outer > steps[1] (s) > inputs.data" in msg
