"""Every catalogue example, end to end through the real `mlops` command."""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CliResult

Mlops = Callable[..., CliResult]
ROOT = Path(__file__).resolve().parents[2]


def test_ml_portfolio_runs_all_examples_with_sane_metrics(mlops: Mlops) -> None:
    r = mlops("run", "metapipeline/ml-portfolio", "--json")
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded"
    assert all(s["status"] == "succeeded" for s in summary["steps"].values())
    assert any("/" in sid for sid in summary["steps"])  # flattened, namespaced ids
    metrics = {k: v for k, v in summary["outputs"].items() if isinstance(v, dict)}
    iris = next(v for k, v in metrics.items() if "iris" in k and "accuracy" in v)
    assert iris["accuracy"] > 0.9
    assert any("r2" in v and v["r2"] > 0.5 for v in metrics.values())
    assert any("anomaly_rate" in v and 0 < v["anomaly_rate"] < 0.5 for v in metrics.values())
    # a second run reuses every step from the cache
    again = mlops("run", "metapipeline/ml-portfolio", "--json")
    assert again.code == 0, again
    assert all(s["cached"] for s in again.json()["steps"].values())


@pytest.mark.parametrize("name", ["iris-classifier", "log-anomaly-detection", "sales-forecast"])
def test_each_pipeline_runs(mlops: Mlops, name: str) -> None:
    r = mlops("run", f"pipeline/{name}", "--json", "--no-cache")
    assert r.code == 0, r
    summary = r.json()
    assert summary["status"] == "succeeded"
    assert summary["outputs"], "pipelines expose outputs"
    for value in summary["outputs"].values():
        if isinstance(value, str):
            assert Path(value).exists()


def test_iris_set_override_changes_the_model(mlops: Mlops) -> None:
    r = mlops("run", "pipeline/iris-classifier", "--set", "estimator=logistic_regression", "--json")
    assert r.code == 0, r
    assert (
        r.json()["outputs"]["report"]["estimator"] == "logistic_regression"
    )  # the override reached the step
    default = mlops("run", "pipeline/iris-classifier", "--json")
    assert default.code == 0, default
    assert default.json()["outputs"]["report"]["estimator"] == "random_forest"
    bad = mlops("run", "pipeline/iris-classifier", "--set", "estimator=telepathy")
    assert bad.code == 2
    assert "telepathy" in bad.stderr and "fix:" in bad.stderr


def test_human_output_shows_progress_and_metrics(mlops: Mlops) -> None:
    r = mlops("run", "pipeline/iris-classifier")
    assert r.code == 0, r
    assert "accuracy" in r.stdout
    assert "✓" in r.stderr and "classify/train" in r.stderr.replace("\n", "")


# The examples of the docs: in each section (a heading) of a document, the code blocks whose first line is
# `# file: NAME` are the files of one example, written to a folder of their own; the `mlops ...` lines of
# the section's bash blocks are then run there, and each must succeed.
DOCS = [ROOT / "README.md", ROOT / "docs" / "STEPS.md"]
FILE_RE = re.compile(r"^(?:#|//) file: (\S+)$")


@dataclass
class DocExample:
    doc: str
    section: str
    files: dict[str, str] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)


def doc_examples(path: Path) -> list[DocExample]:
    examples: list[DocExample] = []
    current = DocExample(path.name, "(top)")
    fence: str | None = None
    block: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is None and line.startswith("```"):
            fence, block = line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            named = FILE_RE.match(block[0]) if block else None
            if named:
                current.files[named[1]] = "\n".join(block) + "\n"
            elif fence == "bash":
                current.commands += [
                    shlex.split(cmd, comments=True) for cmd in block if cmd.startswith("mlops ")
                ]
            fence = None
        elif fence is not None:
            block.append(line)
        elif line.startswith("#"):
            examples.append(current)
            current = DocExample(path.name, line.lstrip("#").strip())
    examples.append(current)
    return [e for e in examples if e.files]


EXAMPLES = [e for doc in DOCS for e in doc_examples(doc)]


def test_the_docs_have_examples() -> None:
    """The extraction finds what it should (a broken convention would silently test nothing)."""
    assert {(e.doc, e.section) for e in EXAMPLES} >= {
        ("README.md", "Writing specs"),
        ("STEPS.md", "Python steps (`runtime: python`)"),
        ("STEPS.md", "Command steps (`runtime: command`)"),
    }
    for e in EXAMPLES:
        assert e.commands, f"{e.doc} > {e.section}: files but no `mlops` command to run them"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.doc}:{e.section}" for e in EXAMPLES])
def test_doc_example_runs_as_written(mlops: Mlops, tmp_path: Path, example: DocExample) -> None:
    folder = tmp_path / "example"
    for name, text in example.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    # `python3` in a command step is the Python of the active virtual environment, as for a user
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for argv in example.commands:
        assert argv[0] == "mlops"
        r = mlops(*argv[1:], cwd=folder, env=env)
        assert r.code == 0, (argv, r)
        if argv[1] == "run":
            assert "✓" in r.stderr and "run " in r.stderr, r
