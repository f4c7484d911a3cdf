"""The launch dialog and the runs screens in a real browser against `mlops up`: launch iris-classifier
from its catalogue entry (target, a parameter changed, a bad one flagged on its field, the k3s plan with
its manifests previewed and downloaded, then local), watch every DAG node turn green live, read the
metrics chart, download an artifact, filter the runs list. Also: a secret's value never reaches the
page, and hostile log text shows as text."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from tests.api.conftest import Server, wait_status
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

SECRET = "hunter2-very-secret-value"


def set_field(field: Locator, value: str) -> None:
    """Type into a parameter field, whichever widget the form made of it (select or input)."""
    if field.evaluate("e => e.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def page_text(page: Page) -> str:
    """The page's HTML and the text of every open shadow root (the code editors live in one)."""
    shadow: str = page.evaluate(
        "() => [...document.querySelectorAll('*')].filter(e => e.shadowRoot)"
        ".map(e => e.shadowRoot.textContent).join('\\n')"
    )
    return page.content() + shadow


def test_launch_watch_metrics_artifact_and_filter(ui_server: Server, browser: Browser, shots: Path) -> None:
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/catalogue/pipeline/iris-classifier")
    page.get_by_role("button", name="Launch…").click()
    dialog = page.get_by_role("dialog", name="Launch iris-classifier")
    expect(dialog).to_be_visible()
    validation = dialog.get_by_test_id("validation")
    expect(validation).to_contain_text("Valid: 5 step(s)")

    # targets: local by default; k3s is offered for preview with the reason it cannot launch
    target = dialog.get_by_label("Run on")
    expect(target).to_have_value("local")
    expect(target.locator("option[value=k3s]")).to_contain_text("preview only: missing K3S_KUBECONFIG")

    # a parameter changed, then a bad one flagged on its field (the server's problem, located)
    # (a field is labelled by its name or its schema's title, whichever the form shows)
    set_field(dialog.get_by_label(re.compile("estimator|classifier", re.I)).first, "svm")
    expect(validation).to_contain_text("Valid")
    trees = dialog.get_by_label(re.compile("n_estimators|number of trees", re.I)).first
    trees.fill("0")
    expect(validation).to_contain_text("Invalid")
    expect(dialog.locator(".launch-params")).to_contain_text("less than the minimum of 1")
    expect(dialog.get_by_role("button", name="Review plan")).to_be_disabled()
    page.screenshot(path=shots / "launch.png", full_page=True)
    assert not violations(page), violations(page)
    trees.fill("50")
    expect(validation).to_contain_text("Valid")

    # k3s: its plan (placement, cost, bundle files) before any launch, each file downloadable
    target.select_option("k3s")
    expect(dialog.get_by_role("note")).to_contain_text("k3s cannot launch now")
    dialog.get_by_role("button", name="Review plan").click()
    plan = dialog.get_by_test_id("plan")
    expect(plan.get_by_test_id("cost")).to_contain_text("Estimated cost")
    expect(plan.locator(".placement")).to_contain_text("classify/train")
    expect(plan.get_by_role("textbox", name="file main.tf.json")).to_contain_text("kubernetes")
    plan.get_by_role("tab", name="manifests/k3s.yaml").click()
    editor = plan.get_by_role("textbox", name="file manifests/k3s.yaml")
    expect(editor).to_contain_text("kind:")
    with page.expect_download() as info:
        plan.get_by_role("button", name="Download k3s.yaml").click()
    downloaded = Path(info.value.path()).read_text(encoding="utf-8")
    with ui_server.client(ui_server.admin_key) as api:
        params = {"estimator": "svm", "n_estimators": 50}
        body = {"pipeline": "pipeline/iris-classifier@1.0.0", "parameters": params}
        expected = api.post("/api/v1/plan", json=body | {"target": {"provider": "k3s"}}).json()
    bundle = expected["bundles"][0]
    assert downloaded == bundle["files"]["manifests/k3s.yaml"]
    expect(dialog.get_by_role("button", name="Launch", exact=True)).to_be_disabled()
    page.screenshot(path=shots / "plan.png", full_page=True)
    assert not violations(page), violations(page)

    # local: nothing provisioned; Launch opens the run page
    target.select_option("local")
    dialog.get_by_role("button", name="Review plan").click()
    expect(dialog.get_by_test_id("plan")).to_contain_text("Nothing is provisioned")
    dialog.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(f"{ui_server.url}/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    page.evaluate("window.__sameDocument = true")

    nodes = page.locator("[data-node]")
    expect(nodes).to_have_count(5)
    for i in range(5):
        expect(nodes.nth(i)).to_have_attribute("data-status", "succeeded", timeout=120_000)
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "succeeded")
    assert page.evaluate("window.__sameDocument") is True  # live, never reloaded
    with ui_server.client(ui_server.admin_key) as api:
        run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["parameters"] == {"estimator": "svm", "n_estimators": 50}
    assert run["target"] == {"provider": "local", "options": {}}
    page.screenshot(path=shots / "run-dag.png", full_page=True)
    assert not violations(page), violations(page)

    page.get_by_role("tab", name="Metrics").click()
    chart = page.locator('.metric-chart[data-metric="accuracy"]')
    expect(chart.locator("canvas")).to_be_visible()
    expect(chart.locator(".u-title")).to_contain_text("accuracy")
    page.screenshot(path=shots / "run-metrics.png", full_page=True)

    page.get_by_role("tab", name="Artifacts").click()
    row = page.locator('[data-artifact="metrics"]')
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    got = Path(info.value.path()).read_bytes()
    with ui_server.client(ui_server.admin_key) as api:
        assert got == api.get(f"/api/v1/runs/{run_id}/artifacts/metrics").content
    assert json.loads(got)["accuracy"] > 0.5

    page.get_by_role("tab", name="Timings").click()
    expect(page.locator(".step-times")).to_contain_text("classify/train")

    # the runs list: filtered by status and by pipeline (the filters are in the address)
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.locator(f'[data-run="{run_id}"]')).to_be_visible()
    page.get_by_label("status").select_option("failed")
    expect(page.locator(f'[data-run="{run_id}"]')).to_have_count(0)
    page.get_by_label("status").select_option("succeeded")
    expect(page.locator(f'[data-run="{run_id}"]')).to_be_visible()
    page.get_by_label("pipeline").fill("pipeline/no-such")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{ui_server.url}/runs?status=succeeded&pipeline=pipeline%2Fno-such")
    expect(page.locator("[data-run]")).to_have_count(0)
    page.get_by_label("pipeline").fill("pipeline/iris")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'[data-run="{run_id}"]')).to_be_visible()
    assert not errors, errors


def test_a_secret_value_never_reaches_the_launch_dialog(ui_server: Server, browser: Browser) -> None:
    pipeline = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "secret-user", "version": "1.0.0"},
        "spec": {
            "steps": [
                {
                    "id": "load",
                    "uses": "playbook/sklearn-dataset@1.0.0",
                    "with": {"name": "iris", "target": "${{ secrets.DATA_TOKEN }}"},
                }
            ]
        },
    }
    with ui_server.client(ui_server.admin_key) as api:
        assert api.put("/api/v1/secrets/DATA_TOKEN", json={"value": SECRET}).status_code in (200, 201)
        r = api.post("/api/v1/catalogue", json={"spec": pipeline, "message": "uses a secret"})
        assert r.status_code == 201, r.text
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/catalogue/pipeline/secret-user")
    page.get_by_role("button", name="Launch…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Run on").select_option("k3s")
    expect(dialog.get_by_test_id("validation")).to_contain_text("Valid")
    dialog.get_by_role("button", name="Review plan").click()
    plan = dialog.get_by_test_id("plan")
    expect(plan.get_by_role("textbox", name="file main.tf.json")).to_be_visible()
    for tab in plan.get_by_role("tab").all():  # every file of the bundle, shown in turn
        tab.click()
        expect(plan.get_by_role("textbox", name=f"file {tab.inner_text()}")).to_be_visible()
        assert SECRET not in page_text(page)
    with page.expect_download() as info:
        plan.get_by_role("button", name="Download plan.json").click()
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert "DATA_TOKEN" in text and SECRET not in text
    storage = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert SECRET not in storage
    assert not errors, errors


def hostile_docs() -> list[dict[str, Any]]:
    # `$` and `{{` printed apart: the runner substitutes expressions in a command's argv
    code = "print('<img src=x onerror=window.__xss=1> \"quoted\" ' + '$' + '{{ params.x }}')"
    return [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "shout", "version": "1.0.0"},
            "spec": {"runtime": "command", "command": {"argv": [sys.executable, "-c", code]}},
        },
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "hostile-logs", "version": "1.0.0"},
            "spec": {"steps": [{"id": "shout", "uses": "playbook/shout"}]},
        },
    ]


def test_hostile_log_text_shows_as_text(ui_server: Server, browser: Browser) -> None:
    with ui_server.client(ui_server.admin_key) as api:
        r = api.post("/api/v1/runs", json={"pipeline": hostile_docs()})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        wait_status(api, run_id, 60)
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(f"{ui_server.url}/runs/{run_id}")
    logs = page.get_by_test_id("logs")
    expect(logs).to_contain_text("<img src=x onerror=window.__xss=1>")
    expect(logs).to_contain_text('"quoted" ${{ params.x }}')
    assert logs.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None
    assert not errors, errors


def test_a_huge_log_is_capped_and_says_what_was_dropped(ui_server: Server, browser: Browser) -> None:
    """9 steps of 1,200 log events each (what the runner sends of a long log): more than the page keeps."""
    code = "import sys\nfor i in range(1500): print(f'line {i} of a long log', sys.argv[1])"
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "chatty", "version": "1.0.0"},
            "spec": {
                "runtime": "command",
                "command": {"argv": [sys.executable, "-c", code, "${{ params.n }}"]},
                "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
            },
        },
        {  # each step its own parameter: none is a cache hit of another
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "chatty-logs", "version": "1.0.0"},
            "spec": {
                "steps": [{"id": f"talk{i}", "uses": "playbook/chatty", "with": {"n": i}} for i in range(9)]
            },
        },
    ]
    with ui_server.client(ui_server.admin_key) as api:
        r = api.post("/api/v1/runs", json={"pipeline": docs})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        assert wait_status(api, run_id, 120) == "succeeded"
        logs = [e for e in api.get(f"/api/v1/runs/{run_id}/events?limit=10000").json() if e["type"] == "log"]
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(f"{ui_server.url}/runs/{run_id}")
    expect(page.locator("h1 [data-status]")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_role("status")).to_contain_text("older line(s) dropped: only the last 10000 are kept")
    expect(page.locator(".log-head")).to_contain_text("All steps: 10000 line(s)")
    assert len(logs) >= 9000  # the run really logged that much
    view = page.get_by_test_id("logs")
    expect(view).to_contain_text("line 1499 of a long log")  # it follows the end
    assert page.locator(".log-line").count() < 200  # only the visible rows are in the page
    assert not errors, errors


def test_auto_target_constraints_are_checked_and_placed(ui_server: Server, browser: Browser) -> None:
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/catalogue/pipeline/iris-classifier")
    page.get_by_role("button", name="Launch…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Run on").select_option("auto")
    price = dialog.get_by_label("Max price per hour (USD)")
    price.fill("-1")  # refused by the server, located at the option
    expect(dialog.get_by_role("alert").filter(has_text="max_price_per_hour")).to_be_visible()
    expect(dialog.get_by_role("button", name="Review plan")).to_be_disabled()
    price.fill("0")
    dialog.get_by_label("Providers").fill("local")
    expect(dialog.get_by_test_id("validation")).to_contain_text("Valid")
    dialog.get_by_role("button", name="Review plan").click()
    placement = dialog.get_by_test_id("plan").locator(".placement")
    expect(placement).to_contain_text("≤ $0/h")  # the constraint, in the placement's reason
    expect(placement.locator("tbody tr").first).to_contain_text("local")
    assert not violations(page), violations(page)
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert not errors, errors


def test_the_runs_list_follows_live_runs(ui_server: Server, browser: Browser, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the step runs until the test, having seen it live, creates this file
    code = (
        "import os, sys, time\n"
        "deadline = time.monotonic() + 120\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    if time.monotonic() > deadline: sys.exit('the test never opened the gate')\n"
        "    time.sleep(0.05)\n"
    )
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "nap", "version": "1.0.0"},
            "spec": {"runtime": "command", "command": {"argv": [sys.executable, "-c", code]}},
        },
        {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "napping", "version": "1.0.0"},
            "spec": {"steps": [{"id": "nap", "uses": "playbook/nap"}]},
        },
    ]
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    with ui_server.client(ui_server.admin_key) as api:
        run_id = api.post("/api/v1/runs", json={"pipeline": docs}).json()["id"]
    page.goto(ui_server.url + "/runs?pipeline=pipeline%2Fnapping")
    row = page.locator(f'[data-run="{run_id}"] [data-status]')
    expect(row).not_to_have_attribute("data-status", "succeeded")
    expect(page.locator(".runs-filters")).to_contain_text("refreshing while runs are live")
    page.evaluate("window.__sameDocument = true")
    gate.touch()
    expect(row).to_have_attribute("data-status", "succeeded", timeout=60_000)  # no reload
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator(".pager")).to_contain_text("page 1 of 1 · 1 run(s)")
    assert not errors, errors
