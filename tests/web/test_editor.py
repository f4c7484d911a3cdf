"""The playbook editor in a real browser against `mlops up`: write a playbook with one input, one output
and a parameter, type its code into CodeMirror, test-run it on a pasted sample (its output and log line
show), see a syntax error next to the code, save it, find it in the catalogue, run it in a pipeline
through the API, and open it again for its next version. Hostile text shows as text."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.api.conftest import Server, wait_status
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

CODE = """import json


def main(ctx, text, times=2):
    value = json.load(open(text))
    ctx.log.info("shouting %s", value)
    ctx.metric("length", len(value))
    return {"shouted": (value.upper() + "!") * times}
"""
HOSTILE = '<img src=x onerror="document.title=1"> "${{ secrets.X }}'


def set_code(page: Page, code: str) -> None:
    """Replace the text of the CodeMirror editor by typing it, key by key, as a user would: the editor
    indents after a colon and closes brackets and quotes itself (typing the closing one steps over it);
    Escape closes the completion list so that Enter starts a new line."""
    box = page.get_by_role("textbox", name="step code")
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for line in code.rstrip("\n").split("\n"):
        page.keyboard.type(line.lstrip())
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
    expect(box).to_contain_text(code.rstrip("\n").split("\n")[-1].strip())


def test_write_try_save_and_run_a_playbook(ui_server: Server, browser: Browser, shots: Path) -> None:
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/editor/new")
    identity = page.locator("section[aria-labelledby=identity-title]")
    name = identity.get_by_label("Name")
    expect(page.get_by_label("AI assistant: describe what this step does")).to_be_editable()

    name.fill(HOSTILE)  # checked as typed, and shown back as text only
    expect(identity.get_by_role("alert")).to_contain_text("lowercase letters")
    assert page.locator("img").count() == 0
    name.fill("shout-text")
    expect(identity.get_by_role("alert")).to_have_count(0)
    identity.get_by_label("Description").fill(HOSTILE)

    page.get_by_role("button", name="Add input").click()
    page.get_by_label("input 1 name").fill("text")
    page.get_by_role("button", name="Add output").click()
    page.get_by_label("output 1 name").fill("shouted")
    page.get_by_label("output 1 type").select_option("text")
    page.get_by_role("button", name="Add parameter").click()  # the shared parameter-schema builder
    param = page.get_by_label("name of parameter 1")
    param.fill("text")  # accepted by the builder, but the input already has this argument name
    param.press("Enter")
    expect(page.get_by_label("parameter name problems")).to_contain_text("'text' is used twice")
    param.fill("times")
    param.press("Enter")
    expect(page.get_by_label("parameter name problems")).to_have_count(0)
    page.get_by_label("type of times").select_option("integer")
    page.get_by_label("default of times").fill("2")
    code = page.get_by_role("textbox", name="step code")  # the template follows the ports and parameters
    expect(code).to_contain_text("def main(ctx, text, times=2):")
    expect(code).to_contain_text('"shouted":')
    expect(page.get_by_label("parameter form preview").get_by_label("times")).to_be_visible()

    set_code(page, CODE.replace("value.upper()", "value.upper(("))  # a syntax error shows by the code
    page.get_by_label("Sample text").fill("hello")
    page.get_by_role("button", name="Run test").click()
    expect(page.get_by_label("code problems")).to_contain_text("Line 8")
    expect(page.get_by_label("code problems")).to_contain_text("syntax error")

    set_code(page, CODE)
    expect(page.get_by_label("code problems")).to_have_count(1)  # still shown until the next try
    page.locator(".try-panel").get_by_label("times").fill("3")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator(".try-panel [data-status]")).to_have_attribute(
        "data-status", "succeeded", timeout=60_000
    )
    expect(page.get_by_label("test run log")).to_contain_text("shouting hello")
    expect(page.get_by_label("test run metrics")).to_contain_text("length")
    expect(page.get_by_label("test run outputs")).to_contain_text("HELLO!HELLO!HELLO!")
    expect(page.get_by_label("code problems")).to_have_count(0)
    page.screenshot(path=shots / "editor.png", full_page=True)

    first = page.locator(".try-panel a[href^='/runs/']").inner_text().removeprefix("run ")
    sample = page.get_by_test_id("sample-text")  # an earlier run's output as the sample
    sample.get_by_text("or an output of an earlier run").click()
    sample.get_by_label("Run id").fill(first)
    sample.get_by_label("Output name").fill("shouted")
    page.get_by_role("button", name="Run test").click()
    expect(page.get_by_label("test run log")).to_contain_text("shouting HELLO!HELLO!HELLO!", timeout=60_000)
    assert not violations(page), violations(page)

    page.get_by_label("Commit message").fill("a first shouting step")
    page.get_by_role("button", name="Save version 0.1.0").click()
    expect(page.get_by_role("status")).to_contain_text("playbook/shout-text@0.1.0")
    expect(page.get_by_role("button", name="Save version 0.1.1")).to_be_visible()
    page.get_by_role("link", name="open it in the catalogue").click()
    expect(page).to_have_url(f"{ui_server.url}/catalogue/playbook/shout-text")
    expect(page.locator(".history")).to_contain_text("a first shouting step")
    expect(page.get_by_text(HOSTILE).first).to_be_visible()  # the description, as text
    assert page.locator("img").count() == 0

    with ui_server.client(ui_server.admin_key) as api:
        outer = {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Pipeline",
            "metadata": {"name": "shout-outer", "version": "1.0.0"},
            "spec": {
                "steps": [
                    {"id": "a", "uses": "playbook/shout-text@0.1.0", "with": {"times": 1},
                     "inputs": {"text": "b.shouted"}},
                    {"id": "b", "uses": "playbook/shout-seed"},
                ],
                "outputs": {"shouted": "a.shouted"},
            },
        }  # fmt: skip
        seed = {
            "apiVersion": "mlops-nocode/v1",
            "kind": "Playbook",
            "metadata": {"name": "shout-seed", "version": "1.0.0"},
            "spec": {
                "runtime": "python",
                "python": {"code": "def main():\n    return {'shouted': 'hi'}\n"},
                "outputs": {"shouted": {"type": "text"}},
            },
        }
        r = api.post("/api/v1/runs", json={"pipeline": [seed, outer]})
        assert r.status_code == 202, r.text
        assert wait_status(api, r.json()["id"]) == "succeeded"
        assert api.get(f"/api/v1/runs/{r.json()['id']}").json()["outputs"] == {"shouted": "HI!"}

    page.goto(ui_server.url + "/catalogue/playbook/shout-text")  # editing loads it, suggests the next patch
    page.get_by_role("link", name="Edit in the playbook editor").click()
    expect(page).to_have_url(ui_server.url + "/editor/shout-text")
    expect(page.get_by_role("button", name="Save version 0.1.1")).to_be_visible()
    expect(page.get_by_role("textbox", name="step code")).to_contain_text("shouting %s")
    expect(page.get_by_label("input 1 name")).to_have_value("text")
    page.goto(ui_server.url + "/editor/sklearn-train")  # a playbook naming a module: said so, not loaded
    expect(page.get_by_role("alert")).to_contain_text("runs an installed module")
    assert not errors, errors
