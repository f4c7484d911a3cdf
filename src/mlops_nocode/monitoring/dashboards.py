"""The Grafana dashboards, generated from the charts of `monitoring.charts` with grafana-foundation-sdk.

One dashboard per panel of `PANELS` (platform overview; runs and steps; models; costs), one timeseries
panel per chart, every query on the Prometheus data source picked by the `datasource` variable. The
generated JSON ships in deploy/monitoring/grafana/dashboards (`mlops monitoring dashboards --out DIR`
rewrites it; a test fails when it is out of date). Imports the SDK: load it only where it is needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import timeseries as ts_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_m
from grafana_foundation_sdk.models import dashboard as dash_m

from mlops_nocode.monitoring.charts import CHARTS, Chart, Panel

TAG = "mlops"
DATASOURCE_VAR = "datasource"
PIPELINE_VAR = "pipeline"
GRID_COLUMNS = 24
PANEL_HEIGHT = 8

# Grafana's unit ids (grafana_foundation_sdk.models.units) for the units of `charts.Unit`.
UNITS: dict[str, str] = {
    "runs": "short",
    "seconds": "s",
    "ratio": "percentunit",
    "usd": "currencyUSD",
    "usd/h": "currencyUSD",
    "requests/s": "reqps",
    "count": "short",
    "value": "none",
}
AXIS_LABELS: dict[str, str] = {"usd/h": "per hour"}


@dataclass(frozen=True, slots=True)
class DashboardDef:
    """One generated dashboard: the panel of `charts` it draws, its stable uid and file name.

    `pipeline_from` is the series whose `pipeline` label fills the `pipeline` variable (None: no
    variable); `repeat` draws each chart once per selected pipeline."""

    panel: Panel
    uid: str
    title: str
    description: str
    pipeline_from: str | None = None
    repeat: bool = False

    @property
    def filename(self) -> str:
        return f"{self.uid}.json"


DASHBOARDS: tuple[DashboardDef, ...] = (
    DashboardDef(
        "overview",
        "mlops-overview",
        "MLOps · Platform overview",
        "Runs ended and failing, active and queued runs, live workers, API traffic and latency",
    ),
    DashboardDef(
        "runs",
        "mlops-runs",
        "MLOps · Runs and steps",
        "Run and step durations, queue latency, step failures and CPU-throttler waits",
        pipeline_from="mlops_step_duration_seconds_count",
    ),
    DashboardDef(
        "models",
        "mlops-models",
        "MLOps · Models",
        "The metrics steps report (ctx.metric) across the runs of each pipeline",
        pipeline_from="mlops_step_metric",
        repeat=True,
    ),
    DashboardDef(
        "costs",
        "mlops-costs",
        "MLOps · Costs",
        "Estimated cost per hour of what runs, against the budget, and money spent by target",
    ),
)


def _datasource() -> dash_m.DataSourceRef:
    return dash_m.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VAR + "}")


def _layout(count: int, repeat: bool) -> list[dash_m.GridPos]:
    """Two charts a row, 12 columns each; a last odd chart (or a repeated one) spans the full width."""
    spots: list[dash_m.GridPos] = []
    for i in range(count):
        full = repeat or (i == count - 1 and count % 2 == 1)
        width = GRID_COLUMNS if full else GRID_COLUMNS // 2
        x = 0 if full else (i % 2) * (GRID_COLUMNS // 2)
        spots.append(dash_m.GridPos(h=PANEL_HEIGHT, w=width, x=x, y=(i // 2) * PANEL_HEIGHT))
    return spots


def _panel(chart: Chart, panel_id: int, spot: dash_m.GridPos, repeat: bool) -> ts_b.Panel:
    title = f"{chart.title} · ${PIPELINE_VAR}" if repeat else chart.title
    panel = (
        ts_b.Panel()
        .id(panel_id)
        .title(title)
        .description(chart.description or chart.title)
        .datasource(_datasource())
        .grid_pos(spot)
        .unit(UNITS[chart.unit])
        .line_width(1)
        .fill_opacity(10)
        .show_points(common_m.VisibilityMode.NEVER)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common_m.LegendDisplayMode.LIST)
            .placement(common_m.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_b.VizTooltipOptions()
            .mode(common_m.TooltipDisplayMode.MULTI)
            .sort(common_m.SortOrder.DESCENDING)
        )
    )
    if chart.unit == "ratio":
        panel = panel.min(0).max(1)
    if chart.unit in AXIS_LABELS:
        panel = panel.axis_label(AXIS_LABELS[chart.unit])
    if repeat:
        panel = panel.repeat(PIPELINE_VAR).repeat_direction("v")
    for i, query in enumerate(chart.queries):
        panel = panel.with_target(
            prom_b.Dataquery()
            .ref_id(chr(ord("A") + i))
            .datasource(_datasource())
            .expr(query.expr)
            .legend_format(query.legend)
            .range()
        )
    return panel


def _variables(spec: DashboardDef) -> list[dash_b.DatasourceVariable | dash_b.QueryVariable]:
    variables: list[dash_b.DatasourceVariable | dash_b.QueryVariable] = [
        dash_b.DatasourceVariable(DATASOURCE_VAR).label("Data source").type("prometheus")
    ]
    if spec.pipeline_from:
        variables.append(
            dash_b.QueryVariable(PIPELINE_VAR)
            .label("Pipeline")
            .description("Pipelines to show (All: every pipeline)")
            .datasource(_datasource())
            .query(f"label_values({spec.pipeline_from}, {PIPELINE_VAR})")
            .refresh(dash_m.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dash_m.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    return variables


def build(spec: DashboardDef) -> dict[str, Any]:
    """The Grafana dashboard JSON (a dict) of one dashboard definition."""
    charts = [c for c in CHARTS if c.panel == spec.panel]
    board = (
        dash_b.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags([TAG])
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(dash_m.DashboardCursorSync.CROSSHAIR)
        .link(
            dash_b.DashboardLink("MLOps dashboards")
            .type(dash_m.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for variable in _variables(spec):
        board = board.with_variable(variable)
    for i, (chart, spot) in enumerate(zip(charts, _layout(len(charts), spec.repeat), strict=True)):
        board = board.with_panel(_panel(chart, i + 1, spot, spec.repeat))
    doc: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return doc


def render(doc: dict[str, Any]) -> str:
    """The text a dashboard is shipped as: stable key order, two-space indent, final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """Every dashboard's file name and JSON text."""
    return {spec.filename: render(build(spec)) for spec in DASHBOARDS}


def write(out_dir: Path) -> list[Path]:
    """Write every dashboard into `out_dir` (created if missing); the paths written, in order.

    Raises OSError when the folder cannot be created or written (the CLI turns it into a Problem)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in generate().items():
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
