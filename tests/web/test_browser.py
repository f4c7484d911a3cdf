"""End to end in a real browser (Debian's chromium, headless, driven by Playwright) against `mlops up`:
sign in through the printed login URL, browse the catalogue, launch iris-classifier through the API and
watch its steps turn green on the run page, retry it from the page (a write with the CSRF token).
Screenshots go to UI_SCREENSHOTS when set (CI keeps that folder), else to the test's tmp dir."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.api.conftest import Server
from tests.web.axe import violations
from tests.web.conftest import login_url, watch_errors


def test_sign_in_browse_launch_and_watch_a_run_live(ui_server: Server, browser: Browser, shots: Path) -> None:
    page: Page = browser.new_page()
    errors = watch_errors(page)

    page.goto(ui_server.url + "/")
    expect(page.get_by_text("Not signed in")).to_be_visible()
    page.goto(login_url(ui_server))
    expect(page).to_have_url(ui_server.url + "/")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    expect(page.locator("#pipelines").get_by_role("link", name="iris-classifier")).to_be_visible()
    expect(page.locator("#targets")).to_contain_text("local")
    page.screenshot(path=shots / "home.png", full_page=True)
    assert not violations(page), violations(page)

    page.get_by_role("link", name="Catalogue").click()
    page.get_by_role("searchbox").fill("iris")
    page.get_by_role("link", name="iris-classifier").click()
    expect(page).to_have_url(f"{ui_server.url}/catalogue/pipeline/iris-classifier")
    expect(page.locator(".parameters")).to_contain_text("estimator")
    expect(page.locator(".steps")).to_contain_text("playbook/sklearn-dataset@1.0.0")
    expect(page.locator(".history li").first).to_be_visible()
    page.get_by_text("Source (YAML)").click()  # CodeMirror, styled within the CSP (no console error)
    expect(page.get_by_role("textbox", name="YAML source")).to_contain_text("name: iris-classifier")
    page.screenshot(path=shots / "catalogue-entry.png", full_page=True)

    # an API error shows where it belongs, with what went wrong
    page.goto(ui_server.url + "/catalogue/pipeline/no-such-pipeline")
    expect(page.get_by_role("alert")).to_contain_text("no-such-pipeline")

    with ui_server.client(ui_server.admin_key) as api:
        r = api.post("/api/v1/runs", json={"pipeline": "pipeline/iris-classifier"})
        assert r.status_code == 202, r.text
        run = r.json()
    page.goto(f"{ui_server.url}/runs/{run['id']}")  # a deep link, answered by the app
    page.evaluate("window.__sameDocument = true")
    steps = page.locator("[data-step]")
    expect(steps).to_have_count(len(run["steps"]))
    for step in run["steps"]:
        item = page.locator(f'[data-step="{step}"]')
        expect(item).to_have_attribute("data-status", "succeeded", timeout=120_000)
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "succeeded")
    assert page.evaluate("window.__sameDocument") is True  # updated live, never reloaded
    page.screenshot(path=shots / "run-succeeded.png", full_page=True)

    # a write from the page: retry sends the session's CSRF token and opens the new run
    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(f"{ui_server.url}/runs/{run['id']}")
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "succeeded", timeout=120_000)
    page.screenshot(path=shots / "run-retried.png", full_page=True)
    assert not errors, errors
