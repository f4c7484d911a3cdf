"""The Grafana dashboards generated from `monitoring/charts.py`: the shipped JSON is up to date, Grafana's
dashboard model (grafana-foundation-sdk) reads it back unchanged, the layout and variables are sound,
every query parses with Debian's real `promtool`, and only names of exported metrics are queried."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_nocode.monitoring import dashboard_checks as checks
from mlops_nocode.monitoring import dashboards as boards
from mlops_nocode.monitoring.charts import CHARTS, PANELS
from mlops_nocode.monitoring.files import shipped_monitoring
from mlops_nocode.monitoring.names import series_names

GRAFANA = shipped_monitoring() / "grafana"
SHIPPED = GRAFANA / "dashboards"
REGENERATE = "mlops monitoring dashboards --out deploy/monitoring/grafana/dashboards"


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return {spec.uid: boards.build(spec) for spec in boards.DASHBOARDS}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install prometheus (it ships promtool)", pytrace=False)
    return path


def test_the_shipped_dashboards_are_the_generated_ones(tmp_path: Path) -> None:
    written = boards.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SHIPPED.glob("*.json")), (
        f"the shipped dashboards are not the generated set: run `{REGENERATE}`"
    )
    stale = [p.name for p in written if (SHIPPED / p.name).read_text("utf-8") != p.read_text("utf-8")]
    assert not stale, f"shipped dashboards out of date: {stale}; run `{REGENERATE}` and commit the result"


def test_one_dashboard_per_panel_with_one_timeseries_per_chart(docs: dict[str, dict[str, Any]]) -> None:
    assert [s.panel for s in boards.DASHBOARDS] == list(PANELS)
    assert len({s.uid for s in boards.DASHBOARDS}) == len(boards.DASHBOARDS)
    for spec in boards.DASHBOARDS:
        doc = docs[spec.uid]
        charts = [c for c in CHARTS if c.panel == spec.panel]
        assert [p["title"].split(" · ")[0] for p in doc["panels"]] == [c.title for c in charts]
        for panel, chart in zip(doc["panels"], charts, strict=True):
            assert panel["type"] == "timeseries"
            assert panel["fieldConfig"]["defaults"]["unit"] == boards.UNITS[chart.unit]
            assert [(t["expr"], t["legendFormat"]) for t in panel["targets"]] == [
                (q.expr, q.legend) for q in chart.queries
            ]
        assert doc["tags"] == ["mlops"] and doc["links"][0]["type"] == "dashboards"
        assert doc["links"][0]["tags"] == ["mlops"], "each dashboard links to the others by their tag"


def test_units_map_to_grafana_units() -> None:
    from grafana_foundation_sdk.models import units

    grafana_units = {v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str)}
    assert {c.unit for c in CHARTS} <= set(boards.UNITS)
    assert set(boards.UNITS.values()) <= grafana_units
    assert boards.UNITS["ratio"] == "percentunit" and boards.UNITS["seconds"] == "s"


def test_variables_datasource_and_pipeline(docs: dict[str, dict[str, Any]]) -> None:
    for spec in boards.DASHBOARDS:
        variables = {v["name"]: v for v in docs[spec.uid]["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        if spec.panel in ("runs", "models"):
            pipeline = variables["pipeline"]
            assert pipeline["includeAll"] is True and pipeline["allValue"] == ".*"
            assert pipeline["query"].startswith("label_values(") and pipeline["query"].endswith(", pipeline)")
        else:
            assert "pipeline" not in variables
    assert (
        docs["mlops-models"]["templating"]["list"][1]["query"] == "label_values(mlops_step_metric, pipeline)"
    )
    assert all(p.get("repeat") == "pipeline" for p in docs["mlops-models"]["panels"])


def test_every_generated_dashboard_is_sound(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        assert checks.problems(doc) == [], uid
    for path in SHIPPED.glob("*.json"):
        assert checks.problems(json.loads(path.read_text("utf-8"))) == [], path.name


def _broken(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(docs["mlops-overview"])


def test_the_structure_check_finds_each_defect(docs: dict[str, dict[str, Any]]) -> None:
    doc = _broken(docs)
    doc["panels"][1]["id"] = doc["panels"][0]["id"]
    assert any("used twice" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][1]["gridPos"] = dict(doc["panels"][0]["gridPos"], x=6)
    assert any("overlap" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][0]["gridPos"]["x"] = 20
    assert any("outside the 24-column grid" in p for p in checks.problems(doc))
    doc = _broken(docs)
    del doc["panels"][0]["targets"][0]["datasource"]
    assert any("no data source" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][0]["targets"][0]["expr"] = " "
    assert any("no expression" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][0]["targets"][0]["expr"] = 'mlops_step_metric{pipeline=~"$pipeline"}'
    assert any("$pipeline is used but no dashboard variable" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][0]["colour"] = "red"  # not in Grafana's model: the round trip drops it
    assert any("does not read it back the same" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["panels"][0]["targets"].append(dict(doc["panels"][0]["targets"][0]))
    assert any("refIds" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["schemaVersion"] = 27
    assert any("schemaVersion 27" in p for p in checks.problems(doc))
    doc = _broken(docs)
    doc["uid"] = "has spaces and is far too long for a grafana uid"
    assert any("not a stable Grafana uid" in p for p in checks.problems(doc))


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum(mlops_runs_active)", {"mlops_runs_active"}),
        (
            'histogram_quantile(0.95, sum by (le, step) (rate(x_bucket{p=~"$p",a="b(c) d"}[5m])))',
            {"x_bucket"},
        ),
        ("a / on(job) group_left(instance) b offset 5m", {"a", "b"}),
        ("sum(rate(a[5m])) by (status) > bool 1e3 and c", {"a", "c"}),
        (
            "clamp_min(sum(increase(mlops_runs_finished_total[$__rate_interval])), 1)",
            {"mlops_runs_finished_total"},
        ),
        ("max_over_time(up{job='x'}[1h:5m]) unless vector(0)", {"up"}),
    ],
)
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert checks.metric_names(expr) == names


def test_dashboards_query_only_exported_metric_names(docs: dict[str, dict[str, Any]]) -> None:
    known = series_names()
    for doc in docs.values():
        for where, target in checks.targets(doc):
            unknown = checks.metric_names(target["expr"]) - known
            assert not unknown, (
                f"{where} queries {sorted(unknown)}, which monitoring/names.py does not define"
            )
            assert checks.metric_names(target["expr"]), where
        assert checks.variable_metrics(doc) <= known


def _check_rules(tmp_path: Path, exprs: list[tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "dashboards.rules.yml"
    rules.write_text(checks.rules_file(exprs), encoding="utf-8")
    return subprocess.run(
        [promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_query_parses_with_promtool(docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    exprs = [(where, t["expr"]) for doc in docs.values() for where, t in checks.targets(doc)]
    assert len(exprs) == sum(len(c.queries) for c in CHARTS)
    done = _check_rules(tmp_path, exprs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_promtool_refuses_a_query_that_does_not_parse(tmp_path: Path) -> None:
    done = _check_rules(tmp_path, [("x", "sum by (le (rate(mlops_runs_finished_total[$__rate_interval]))")])
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert '"dashboard_expr_0": could not parse expression' in said and "parse error" in said


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text("utf-8"))
    assert sources["apiVersion"] == 1
    (prom,) = sources["datasources"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prometheus:9090" and prom["isDefault"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/mlops.yml").read_text("utf-8"))
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
