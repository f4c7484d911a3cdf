"""Fuzzing the loader and the compiler with generated hostile specs: only located problems, never an
exception of another kind, and every plan that compiles is plain JSON that placement can check.

Documents are structurally plausible (the right keys, mostly) with wrong types, odd strings, deep
nesting, huge numbers, unicode, missing fields and refs to nothing mixed in everywhere.
"""

from __future__ import annotations

import json
import os
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_nocode.catalogue import Index
from mlops_nocode.compiler import Plan, compile_plan
from mlops_nocode.compiler.check import check_doc, validate_graphs, warnings_of
from mlops_nocode.providers.checks import check_placed
from mlops_nocode.providers.placement import deployments, place, placement_problems
from mlops_nocode.spec import Pipeline, SpecError, load_text, parse_document
from tests.conftest import PLAYBOOKS

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=list(HealthCheck),
)
BASE = load_text(PLAYBOOKS)

ODD = st.sampled_from(
    [
        "",
        " ",
        "${{",
        "${{ params.n",
        "${{ params.n }}",
        "${{ params.n | shell_quote }}",
        "${{ params.n | upper }}",
        "${{ secrets.TOKEN }}",
        "${{ inputs.x }}",
        "${{ env.HOME }}",
        "}}${{",
        "load",
        "a.y",
        "inputs.x",
        "a.b.c",
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "0s",
        "-1",
        "1e999",
        "10m",
        "9" * 400,
        "1.2.1-rc.1",
        "[bold]x[/]",
        "é漢字🙂",
        "\u202e",
        "a\x00b",
        "\ud800",
        "x" * 300,
    ]
)
TEXT = st.one_of(ODD, st.text(max_size=20))
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    TEXT,
)
ANY = st.recursive(
    LEAF,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.one_of(TEXT, st.integers()), c, max_size=3),
    max_leaves=12,
)


def deep(n: int) -> Any:
    value: Any = "x"
    for _ in range(n):
        value = {"a": value}
    return value


DEEP = st.integers(min_value=20, max_value=300).map(deep)


def maybe(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Where a hostile value may replace the plausible one (see `mutated`)."""
    return plausible


NAMES = st.sampled_from(
    ["add", "call", "p", "q", "a", "b", "s", "x", "y", "n", "inputs", "Bad_Name", "nosuch"]
)
REFS = st.builds(
    "{}/{}{}".format,
    st.sampled_from(["playbook", "pipeline", "metapipeline", "job"]),
    NAMES,
    st.sampled_from(["", "@1.0.0", "@^1", "@~1.2", "@^1.0.0-rc.1", "@*", "@>=1.0.0,<2.0.0", "@bad", "@"]),
)
CONNECTION = st.one_of(
    st.builds("{}.{}".format, st.sampled_from(["a", "b", "s", "inputs", "zz"]), NAMES), ODD
)
PORT = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(st.sampled_from(["json", "dataset", "any", "model", "nope"])),
        "optional": maybe(st.booleans()),
    },
)
PORTS = st.dictionaries(st.one_of(NAMES, ODD), maybe(PORT), max_size=3)
SCHEMA_PROP = st.fixed_dictionaries(
    {},
    optional={
        "type": maybe(st.sampled_from(["integer", "string", "number", "object", "array"])),
        "default": ANY,
        "minimum": maybe(st.integers()),
        "enum": maybe(st.lists(LEAF, max_size=3)),
        "pattern": maybe(st.sampled_from(["^a+$", "(a+)+$", "(?=a)", "[", "\\d"])),
        "$ref": st.sampled_from(["#/nope", "https://example.invalid/s.json"]),
        "uniqueItems": st.booleans(),
    },
)
SCHEMA = st.fixed_dictionaries(
    {
        "type": maybe(st.just("object")),
        "properties": maybe(st.dictionaries(NAMES, maybe(SCHEMA_PROP), max_size=3)),
    },
    optional={
        "required": maybe(st.lists(NAMES, max_size=2)),
        "additionalProperties": maybe(st.booleans()),
    },
)
DURATION = maybe(st.sampled_from(["10m", "0s", 0, -1, 1e308, "1" * 400 + "h", 0.5, "2h", True]))
TARGET = st.fixed_dictionaries(
    {"provider": maybe(st.sampled_from(["local", "auto", "k3s", "mars"]))}, optional={"options": maybe(ANY)}
)
STEP = st.fixed_dictionaries(
    {
        "id": maybe(NAMES),
        "uses": maybe(st.one_of(st.sampled_from(["playbook/add", "pipeline/p", "pipeline/q"]), REFS)),
    },
    optional={
        "with": maybe(
            st.dictionaries(st.sampled_from(["n", "action", "arg", "zz"]), maybe(st.one_of(ODD, ANY)))
        ),
        "inputs": maybe(st.dictionaries(st.sampled_from(["x", "data", "zz"]), maybe(CONNECTION), max_size=2)),
        "depends_on": maybe(st.lists(NAMES, max_size=2)),
        "timeout": DURATION,
        "retries": maybe(st.integers(min_value=-1, max_value=30)),
        "target": maybe(TARGET),
    },
)
META = st.fixed_dictionaries(
    {"name": maybe(NAMES)},
    optional={
        "version": maybe(st.sampled_from(["1.0.0", "1.1.0-rc.1", "2.0.0"])),
        "labels": maybe(st.dictionaries(ODD, ODD, max_size=2)),
    },
)
PIPELINE = st.fixed_dictionaries(
    {
        "apiVersion": maybe(st.just("mlops-nocode/v1")),
        "kind": maybe(st.sampled_from(["Pipeline", "MetaPipeline"])),
        "metadata": maybe(META),
        "spec": maybe(
            st.fixed_dictionaries(
                {"steps": maybe(st.lists(maybe(STEP), min_size=1, max_size=4))},
                optional={
                    "parameters": maybe(SCHEMA),
                    "inputs": maybe(PORTS),
                    "outputs": maybe(st.dictionaries(st.one_of(NAMES, ODD), maybe(CONNECTION), max_size=2)),
                    "target": maybe(TARGET),
                },
            )
        ),
    }
)
COMMAND = st.fixed_dictionaries(
    {
        "argv": maybe(
            st.lists(
                st.one_of(st.sampled_from(["sh", "-c", "python3", "-e", "bash"]), ODD), min_size=1, max_size=5
            )
        )
    },
    optional={
        "env": maybe(st.dictionaries(st.one_of(st.sampled_from(["A", "B_1"]), ODD), ODD, max_size=2)),
        "outputs": maybe(st.dictionaries(NAMES, ODD, max_size=2)),
    },
)
PLAYBOOK = st.fixed_dictionaries(
    {
        "apiVersion": st.just("mlops-nocode/v1"),
        "kind": st.just("Playbook"),
        "metadata": maybe(META),
        "spec": maybe(
            st.fixed_dictionaries(
                {
                    "runtime": maybe(st.sampled_from(["python", "command", "container"])),
                    "python": maybe(st.fixed_dictionaries({"entrypoint": maybe(st.just("steps:add"))})),
                    "command": maybe(COMMAND),
                },
                optional={
                    "inputs": maybe(PORTS),
                    "outputs": maybe(PORTS),
                    "parameters": maybe(SCHEMA),
                    "resources": maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "cpu": maybe(st.sampled_from([0.5, 0, -1, 1e308, 10**30])),
                                "memory": maybe(st.sampled_from(["1Gi", "9" * 30 + "Ti", "x"])),
                                "gpu": maybe(st.integers()),
                            },
                        )
                    ),
                    "timeout": DURATION,
                    "secrets": maybe(st.lists(st.one_of(NAMES, ODD), max_size=2)),
                },
            )
        ),
    }
)


def mutate(doc: Any, picks: list[tuple[int, Any]]) -> Any:
    """`doc` with the values at some of its places (chosen by index) replaced by hostile ones."""
    for index, value in picks:
        places: list[tuple[Any, Any]] = []
        stack = [doc]
        while stack:
            node = stack.pop()
            keys = (
                list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
            )
            for k in keys:
                places.append((node, k))
                stack.append(node[k])
        if places:
            node, k = places[index % len(places)]
            node[k] = value
    return doc


HOSTILE = st.one_of(ANY, DEEP, TEXT, LEAF)
MUTATED = st.builds(
    mutate, st.one_of(PIPELINE, PLAYBOOK), st.lists(st.tuples(st.integers(0, 10**6), HOSTILE), max_size=2)
)
DOCS = st.lists(MUTATED, min_size=1, max_size=5)


def only_spec_errors(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except SpecError as e:
        assert e.problems and all(isinstance(p.what, str) and p.what for p in e.problems)
        json.dumps(e.to_json())
        return None


def check_plan(plan: Plan) -> None:
    text = json.dumps(plan.to_json(), allow_nan=False)
    assert Plan.from_json(json.loads(text)).to_json() == plan.to_json()
    placed = only_spec_errors(place, plan)
    only_spec_errors(place, plan, {"provider": "mars"})
    if placed is not None:
        text = json.dumps(placed.to_json(), allow_nan=False)
        assert Plan.from_json(json.loads(text)).to_json() == placed.to_json()
        assert all(isinstance(p.what, str) for p in check_placed(placed))
        assert sum(len(d.steps) for d in deployments(placed, "r1")) == len(placed.steps)


@FUZZ
@given(DOCS)
def test_the_loader_gives_documents_or_located_problems(datas: list[Any]) -> None:
    for data in datas:
        only_spec_errors(parse_document, data, "fuzz")
    try:
        text = yaml.safe_dump_all(datas, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError, ValueError):
        return
    only_spec_errors(load_text, text, "fuzz.yaml")
    for cut in (len(text) // 3, len(text) // 2):
        only_spec_errors(load_text, text[:cut] + "{[" + text[cut:], "fuzz.yaml")


@FUZZ
@given(st.text(max_size=300))
def test_any_text_gives_documents_or_located_problems(text: str) -> None:
    only_spec_errors(load_text, text, "fuzz.yaml")
    only_spec_errors(load_text, "apiVersion: mlops-nocode/v1\nkind: Pipeline\n" + text, "fuzz.yaml")


@FUZZ
@given(DOCS, maybe(st.dictionaries(st.sampled_from(["n", "x", "zz"]), ANY, max_size=3)), maybe(TARGET))
def test_the_compiler_gives_plans_or_located_problems(datas: list[Any], params: Any, target: Any) -> None:
    docs = [d for d in (only_spec_errors(parse_document, data, "fuzz") for data in datas) if d is not None]
    index = Index([*BASE, *docs])
    for doc in docs:
        only_spec_errors(check_doc, doc, index)
        if isinstance(doc, Pipeline) or doc.kind == "MetaPipeline":
            values = params if isinstance(params, dict) else {}
            launch = (
                target if isinstance(target, dict) and isinstance(target.get("options", {}), dict) else None
            )
            for check_only in (True, False):
                plan = only_spec_errors(compile_plan, doc, index, values, launch, check_only)
                if plan is not None:
                    check_plan(plan)
            plans = only_spec_errors(validate_graphs, docs, doc, index, {}, placement_problems)
            warnings_of(docs, plans or [])
    only_spec_errors(compile_plan, "pipeline/p", index, params if isinstance(params, dict) else {})
