"""The pure parts of the chart data: the time grid, bucketing, quantiles, the PromQL placeholders."""

from __future__ import annotations

import math

import pytest

from mlops_nocode.api.routes.monitoring import MAX_POINTS, MAX_RANGE, MIN_RANGE, grid
from mlops_nocode.monitoring.charts import CHARTS
from mlops_nocode.monitoring.promquery import legend, pipeline_regex, render
from mlops_nocode.runs.history import Grid, quantile


@pytest.mark.parametrize("seconds", [MIN_RANGE, 61, 900, 3600, 86_399, 7 * 86_400, MAX_RANGE])
@pytest.mark.parametrize("min_step", [1, 15])
def test_the_grid_is_aligned_and_bounded(seconds: int, min_step: int) -> None:
    start, end, step = grid(seconds, min_step, 1_795_000_123.7)
    assert step >= min_step and start % step == 0 and end % step == 0
    assert end - step < 1_795_000_123.7 <= end and end - start <= seconds
    assert len(Grid(start, end, step).x) <= MAX_POINTS


def test_buckets_and_intervals() -> None:
    g = Grid(100, 130, 10)  # x: 100 110 120 130; bucket i holds (x - 10, x]
    assert g.x == [100.0, 110.0, 120.0, 130.0]
    assert [g.bucket(t) for t in (90, 90.5, 100, 100.1, 130, 130.1)] == [None, 0, 0, 1, 3, None]
    values: list[float | None] = [0.0] * 4
    g.add_during(values, 105, 125, 2)  # x in [105, 125): 110, 120
    g.add_during(values, 125, math.inf, 1)  # still open: 130
    g.add_during(values, 0, 50, 7)  # before the grid: nothing
    assert values == [0.0, 2.0, 2.0, 1.0]


def test_quantiles() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0], 0.95) == 3.0
    assert quantile([float(v) for v in range(1, 101)], 0.95) == 95.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0


def test_placeholders() -> None:
    assert render('x{p=~"$pipeline"}[$__rate_interval]', 15, None) == 'x{p=~".*"}[60s]'
    assert render('x{p=~"$pipeline"}', 15, 'a"b\\c.d') == 'x{p=~"a\\\\\\"b\\\\\\\\c\\\\.d"}'
    assert pipeline_regex("pipeline/x@1.0.0") == "pipeline\\/x\\@1\\.0\\.0"
    assert pipeline_regex("é \n") == "\\x{E9}\\x{20}\\x{A}"
    assert legend("{{step}} {{ metric }}", {"step": "fit", "metric": "f1"}) == "fit f1"
    assert legend("p95", {}) == "p95"
    for chart in CHARTS:  # every placeholder is one the gateway fills
        for q in chart.queries:
            filled = render(q.expr, 15, "p")
            assert "$" not in filled, filled
