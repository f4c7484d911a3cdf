"""The monitoring page in Debian's chromium against a real `mlops up` (no Prometheus: the gateway's own
history) after real runs: each tab draws its charts with uPlot, the pipeline picker narrows the models
panel, empty charts say why, and axe finds no serious accessibility violation.

With UPDATE_MONITORING_SCREENSHOTS=1 the test also writes docs/monitoring/<panel>.png (the screenshots
docs/MONITORING.md shows)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.api.conftest import Server, sleeper, wait_status
from tests.api.test_monitoring_charts import scored
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

DOCS = Path(__file__).parents[2] / "docs" / "monitoring"
PANELS = {"overview": "Overview", "runs": "Runs and steps", "models": "Models", "costs": "Costs"}


def _runs(server: Server) -> str:
    """Runs to chart: a scored pipeline three times, two sleepers (one failing); the scored pipeline."""
    with server.client(server.admin_key) as admin:
        ids = []
        for score in (0.62, 0.81, 0.93):
            body = {"pipeline": scored("mon-ui"), "parameters": {"score": score}}
            ids.append(admin.post("/api/v1/runs", json=body).json()["id"])
            assert wait_status(admin, ids[-1]) == "succeeded"
        for name, fail in (("mon-ui-ok", None), ("mon-ui-fail", "b")):
            run = admin.post(
                "/api/v1/runs", json={"pipeline": sleeper(name, [("a", 0.2), ("b", 0.3)], fail=fail)}
            )
            wait_status(admin, run.json()["id"])
        return "mon-ui"  # pipelines go by name (all versions), as /metrics labels them


def _tab(page: Page, panel: str) -> None:
    page.get_by_role("tab", name=PANELS[panel]).click()
    expect(page.get_by_role("tab", name=PANELS[panel])).to_have_attribute("aria-selected", "true")
    expect(page.locator("figure[data-chart]").first).to_be_visible()


def test_each_tab_draws_its_charts(ui_server: Server, browser: Browser) -> None:
    pipeline = _runs(ui_server)
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.get_by_role("link", name="Monitoring").click()
    expect(page.get_by_role("heading", name="Monitoring")).to_be_visible()
    expect(page.locator(".source")).to_have_attribute("data-source", "gateway")

    expect(page.locator('figure[data-chart="runs_finished"][data-drawn="yes"] canvas')).to_be_visible()
    expect(page.locator('figure[data-chart="failure_rate"][data-drawn="yes"] canvas')).to_be_visible()
    expect(page.locator('figure[data-chart="api_requests"]')).to_contain_text("Prometheus")
    assert not violations(page, ("critical", "serious")), violations(page, ("critical", "serious"))

    # live: a run that ends while the page is open shows up at the next refresh (every 10 s)
    figure = page.locator('figure[data-chart="runs_finished"]')
    before = figure.get_attribute("data-total") or "0"
    with ui_server.client(ui_server.admin_key) as admin:
        run = admin.post("/api/v1/runs", json={"pipeline": sleeper("mon-ui-live", [("a", 0.01)])})
        assert wait_status(admin, run.json()["id"]) == "succeeded"
    expect(figure).not_to_have_attribute("data-total", before, timeout=30_000)
    assert float(figure.get_attribute("data-total") or 0) > float(before)

    _tab(page, "runs")
    expect(page.locator('figure[data-chart="run_duration"][data-drawn="yes"] canvas')).to_be_visible()
    expect(page.locator('figure[data-chart="step_duration"][data-drawn="yes"] canvas')).to_be_visible()

    _tab(page, "models")
    page.get_by_label("Pipeline").select_option(pipeline)
    chart = page.locator('figure[data-chart="model_metrics"][data-drawn="yes"]')
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart).to_contain_text("fit accuracy")
    assert "pipeline=" in page.url
    assert not violations(page, ("critical", "serious")), violations(page, ("critical", "serious"))

    _tab(page, "costs")
    expect(page.locator('figure[data-chart="cost_per_hour"]')).to_contain_text("No data in this range")
    expect(page.locator('figure[data-chart="cost_per_hour"]')).to_contain_text("local runs cost nothing")

    page.get_by_label("Range").select_option(str(24 * 3600))
    assert "range=86400" in page.url
    assert not errors, errors

    if os.environ.get("UPDATE_MONITORING_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for panel in PANELS:
            page.goto(
                f"{ui_server.url}/monitoring?panel={panel}&range=900"
                + (f"&pipeline={pipeline}" if panel == "models" else "")
            )
            expect(page.locator("figure[data-chart]").first).to_be_visible()
            if panel != "costs":
                expect(page.locator('figure[data-drawn="yes"] canvas').first).to_be_visible()
            page.screenshot(path=str(DOCS / f"{panel}.png"), full_page=True)


def test_a_bad_address_shows_a_located_problem(ui_server: Server, browser: Browser) -> None:
    page = signed_in(browser, ui_server)
    page.goto(f"{ui_server.url}/monitoring?panel=models&pipeline=%22%7D%20or%20vector(1)")
    expect(page.get_by_role("alert")).to_contain_text("no runs of pipeline")
    expect(page.get_by_role("alert")).to_contain_text("query.pipeline")
    with httpx.Client(base_url=ui_server.url) as anonymous:
        assert anonymous.get("/api/v1/monitoring/pipelines").status_code == 401
