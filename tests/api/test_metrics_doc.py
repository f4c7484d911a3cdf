"""docs/MONITORING.md lists every metric of monitoring.names as it is (name, type, labels,
meaning): regenerate the table with `python -m tests.api.test_metrics_doc` when names.py changes."""

from __future__ import annotations

from pathlib import Path

from mlops_nocode.monitoring import names

DOC = Path(__file__).resolve().parents[2] / "docs" / "MONITORING.md"


def table() -> str:
    """The Markdown table of every family, with the sample names PromQL uses."""
    lines = ["| metric (PromQL names) | type | labels | meaning |", "|---|---|---|---|"]
    for m in names.METRICS:
        series = ", ".join(f"`{s}`" for s in m.series_names())
        labels = ", ".join(f"`{label}`" for label in m.labels) or "-"
        lines.append(f"| {series} | {m.kind} | {labels} | {m.help} |")
    return "\n".join(lines) + "\n"


def test_the_doc_lists_every_metric_as_names_py_defines_it() -> None:
    assert table() in DOC.read_text(), f"regenerate the table in {DOC}: python -m tests.api.test_metrics_doc"


if __name__ == "__main__":
    print(table(), end="")
