"""The parameter forms in a real browser against `mlops up`, through the catalogue entry page's "Try
parameters" (a pipeline's parameters, checked by POST /api/v1/validate) and "Try this step's values" (a
step's `with:` with bindings to the pipeline's parameters and a secret picker).

The form is generated from the JSON Schema by rjsf with a validator that compiles no code: the page's
Content-Security-Policy forbids eval, so any console error (a CSP violation included) fails the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api.conftest import Server
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

SECRET_VALUE = "s3cr3t-VALUE-never-shown-42"
HOSTILE = "<img src=x onerror=window.__xss=1>"

PLAYBOOK: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Playbook",
    "metadata": {"name": "form-upload", "version": "1.0.0", "description": "Upload a model somewhere."},
    "spec": {
        "runtime": "python",
        "python": {"entrypoint": "mlops_nocode.library.datasets:load_sklearn_dataset"},
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "token": {"type": "string", "title": "API token", "writeOnly": True},
                "retries": {"type": "integer", "title": "Retries", "minimum": 0, "maximum": 10, "default": 1},
                "endpoint": {"type": "string", "title": "Endpoint", "default": "https://example.invalid"},
            },
        },
    },
}

PIPELINE: dict[str, Any] = {
    "apiVersion": "mlops-nocode/v1",
    "kind": "Pipeline",
    "metadata": {"name": "form-lab", "version": "1.0.0", "description": "Every kind of parameter."},
    "spec": {
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["dataset"],
            "properties": {
                "dataset": {
                    "type": "string",
                    "title": "Dataset",
                    "description": "Which bundled data set to load.",
                    "enum": ["iris", "wine"],
                },
                "n_days": {"type": "integer", "title": "Days", "minimum": 1, "maximum": 30, "default": 7},
                "shuffle": {"type": "boolean", "title": "Shuffle", "default": False},
                "tags": {"type": "array", "title": "Tags", "items": {"type": "string", "minLength": 2}},
                "grid": {
                    "type": "object",
                    "title": "Grid",
                    "properties": {
                        "C": {"type": "number", "title": "C", "exclusiveMinimum": 0, "default": 1.0},
                        "kernel": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                    },
                },
                "note": {"type": "string", "title": HOSTILE, "description": 'a "quoted" ${{ help'},
            },
        },
        "steps": [
            {
                "id": "load",
                "uses": "playbook/sklearn-dataset@1.0.0",
                "with": {"name": "${{ params.dataset }}"},
            },
            {
                "id": "upload",
                "uses": "playbook/form-upload@1.0.0",
                "with": {"retries": "${{ params.n_days }}"},
                "depends_on": ["load"],
            },
        ],
    },
}


@pytest.fixture(scope="module")
def lab(ui_server: Server) -> Server:
    with ui_server.client(ui_server.admin_key) as api:
        r = api.put("/api/v1/secrets/hf_token", json={"value": SECRET_VALUE})
        assert r.status_code in (200, 201), r.text
        r = api.post("/api/v1/catalogue", json={"spec": [PLAYBOOK, PIPELINE], "message": "form lab"})
        assert r.status_code == 201, r.text
    return ui_server


def field(page: Page, fid: str) -> Any:
    return page.locator(f"#{fid}")


def test_generated_form_checked_by_the_gateway(lab: Server, browser: Browser, shots: Path) -> None:
    page = signed_in(browser, lab)
    errors = watch_errors(page)
    page.goto(lab.url + "/catalogue/pipeline/form-lab")
    form = page.get_by_role("group", name="Try parameters")
    expect(form).to_be_visible()

    # enum as a select, with its description as help and a required mark
    dataset = form.get_by_label("Dataset")
    assert dataset.evaluate("e => e.tagName") == "SELECT"
    expect(dataset.locator("option")).to_have_text(["— choose… —", "iris", "wine"])
    expect(page.locator("#try_dataset__description")).to_have_text("Which bundled data set to load.")
    expect(form.locator('[data-field="dataset"] .pf-required')).to_be_visible()
    # bounds and the default shown
    days = field(page, "try_n_days")
    expect(days).to_have_attribute("type", "number")
    expect(days).to_have_attribute("min", "1")
    expect(days).to_have_attribute("max", "30")
    expect(days).to_have_attribute("placeholder", "7")
    # a boolean as a checkbox
    shuffle = form.get_by_label("Shuffle")
    expect(shuffle).to_have_attribute("type", "checkbox")
    shuffle.check()
    expect(shuffle).to_be_checked()
    # an array: add two items, remove the first
    form.get_by_role("button", name="Add item").click()
    form.get_by_role("button", name="Add item").click()
    field(page, "try_tags_0").fill("first")
    field(page, "try_tags_1").fill("x")  # too short: the gateway will say so on this item
    form.get_by_role("button", name="Remove item").first.click()
    expect(field(page, "try_tags_0")).to_have_value("x")
    expect(field(page, "try_tags_1")).to_have_count(0)
    # a nested object (pydantic's nullable anyOf rendered as its plain type)
    expect(page.locator("#try_grid legend")).to_have_text("Grid")
    expect(field(page, "try_grid_kernel")).to_have_attribute("type", "text")
    # a hostile title shows as text
    expect(form.get_by_text(HOSTILE)).to_be_visible()
    assert page.evaluate("window.__xss") is None

    # typing keeps the focus and the caret (the page re-renders on every keystroke)
    note = field(page, "try_note")
    note.click()
    page.keyboard.type("abc")
    page.keyboard.press("ArrowLeft")
    page.keyboard.type("X")
    expect(note).to_have_value("abXc")
    assert page.evaluate("document.activeElement.id") == "try_note"

    # bad values: the gateway's problems land on their fields (nested and array items too)
    dataset.select_option("iris")
    days.fill("99")
    field(page, "try_grid_C").fill("-1")
    page.get_by_role("button", name="Check", exact=True).click()
    for fid, text in [("try_n_days", "maximum of 30"), ("try_grid_C", "minimum"), ("try_tags_0", "short")]:
        expect(field(page, fid)).to_have_attribute("aria-invalid", "true")
        message = page.locator(f"#{fid}__error")
        expect(message).to_contain_text(text)
        assert f"{fid}__error" in (field(page, fid).get_attribute("aria-describedby") or "")
    page.screenshot(path=shots / "forms.png", full_page=True)
    assert not violations(page), violations(page)

    # fixed values are valid
    days.fill("5")  # the upload step binds its retries (at most 10) to it
    field(page, "try_grid_C").fill("0.5")
    field(page, "try_tags_0").fill("ok")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_test_id("try-valid")).to_contain_text("steps would run")
    expect(days).not_to_have_attribute("aria-invalid", "true")

    # the target: usable providers, the others disabled with the names of what they miss
    picker = page.locator("#try-target-provider")
    expect(picker.locator('option[value="local"]')).to_be_enabled()
    expect(picker.locator('option[value="exoscale"]')).to_be_disabled()
    expect(picker.locator('option[value="exoscale"]')).to_contain_text("EXOSCALE_API_KEY")
    expect(page.locator('.disabled-reason [data-provider="vastai"]')).to_contain_text("VAST_API_KEY")
    picker.select_option("auto")
    constraints = page.get_by_role("group", name="Target constraints")
    expect(constraints.get_by_label("Max price per hour (USD)")).to_be_visible()
    constraints.get_by_label("Max price per hour (USD)").fill("-1")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.locator(".try-parameters .problems")).to_contain_text("max_price_per_hour")
    picker.select_option("local")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.get_by_test_id("try-valid")).to_contain_text("steps would run")

    # a problem that is on no field is shown above, never dropped
    note.fill("${{ nope")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(page.locator(".try-parameters .problems")).to_contain_text("launch values are data")
    assert not errors, errors


def test_step_values_with_bindings_and_secret_picker(lab: Server, browser: Browser, shots: Path) -> None:
    page = signed_in(browser, lab)
    errors = watch_errors(page)
    page.goto(lab.url + "/catalogue/pipeline/form-lab")
    upload = page.get_by_test_id("try-step-upload")
    page.locator(".steps li", has_text="form-upload").get_by_text("Try this step's values").click()
    form = upload.get_by_role("group", name="with: of step upload")
    expect(form).to_be_visible()

    # the stored binding shows as the binding, not as an input
    expect(form.locator('[data-bound="retries"]')).to_have_text("${{ params.n_days }}")
    # bind another field to a pipeline parameter through its picker
    picker = form.get_by_label("Endpoint: value or binding")
    expect(picker.locator("option")).to_contain_text(["a value", "← params.dataset", "← params.n_days"])
    picker.select_option("dataset")
    expect(form.locator('[data-bound="endpoint"]')).to_have_text("${{ params.dataset }}")
    # the change was validated in the browser: a bound integer field is not "the wrong type"
    expect(form.locator('[data-bound="retries"]')).to_be_visible()
    expect(page.locator(".try-step .pf-error")).to_have_count(0)
    # unbind: the input comes back
    form.get_by_label("Retries: value or binding").select_option("")
    expect(page.locator("#step-1_retries")).to_be_visible()
    page.locator("#step-1_retries").fill("3")

    # the secret picker lists the secrets' names, never a value
    secret = page.locator("#step-1_token")
    expect(secret).to_have_attribute("data-secret-picker", "true")
    expect(secret.locator("option")).to_contain_text(["hf_token"])
    secret.select_option("hf_token")
    upload.get_by_role("button", name="Check step").click()
    expect(upload.get_by_test_id("try-valid")).to_be_visible()
    assert SECRET_VALUE not in page.content()
    assert SECRET_VALUE not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")

    # a bad literal on the step is flagged on its field by the gateway
    page.locator("#step-1_retries").fill("11")
    upload.get_by_role("button", name="Check step").click()
    expect(page.locator("#step-1_retries__error")).to_have_text(
        "11 is greater than the maximum of 10. Fix: give an integer >= 0 <= 10"
    )  # the gateway's word replaces the browser's own message on that field
    page.screenshot(path=shots / "forms-step.png", full_page=True)
    assert not violations(page), violations(page)
    assert not errors, errors


def test_a_large_form_stays_responsive(lab: Server, browser: Browser) -> None:
    """120 parameters (a third each of enums, bounded integers and strings): the form renders them all and
    typing in one keeps every keystroke's value; the timings are printed for docs/PERFORMANCE.md (the
    browser's Event Timing API reports events of 16 ms or more), never asserted."""
    props: dict[str, Any] = {}
    for i in range(120):
        kind = i % 3
        props[f"p{i}"] = (
            {"type": "string", "enum": ["a", "b", "c"], "default": "a"}
            if kind == 0
            else {"type": "integer", "minimum": 0, "maximum": 1000, "default": i}
            if kind == 1
            else {"type": "string", "title": f"Text {i}", "description": "free text"}
        )
    big = {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": "form-big", "version": "1.0.0"},
        "spec": {
            "parameters": {"type": "object", "properties": props},
            "steps": [{"id": "load", "uses": "playbook/sklearn-dataset@1.0.0"}],
        },
    }
    with lab.client(lab.admin_key) as api:
        r = api.post("/api/v1/catalogue", json={"spec": big, "message": "big form"})
        assert r.status_code == 201, r.text
    page = signed_in(browser, lab)
    errors = watch_errors(page)
    page.goto(lab.url + "/catalogue/pipeline/form-big")
    expect(page.locator("#try_p119")).to_be_visible()
    ready_ms = page.evaluate("performance.now()")
    page.evaluate(
        "window.__slow = []; new PerformanceObserver(l => window.__slow.push(...l.getEntries().map("
        "e => [e.name, e.duration, e.processingEnd - e.processingStart])))"
        ".observe({type: 'event', durationThreshold: 16, buffered: false})"
    )
    text = page.locator("#try_p2")
    text.click()
    page.keyboard.type("responsive form")
    expect(text).to_have_value("responsive form")
    slow = page.evaluate("window.__slow")
    worst = max((d for _, d, _p in slow), default=0)
    work = max((p for _, _d, p in slow), default=0)
    print(f"\n120-field form: ready {ready_ms:.0f} ms after navigation;", end=" ")
    print(f"events of 16 ms or more: {len(slow)}, worst {worst:.0f} ms (handlers: {work:.0f} ms)")
    assert not errors, errors
