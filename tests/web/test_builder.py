"""The visual builder in a real browser against `mlops up`: build iris-classifier by drag and drop, see an
incompatible connection refused while dragging, save a version, undo/redo a deleted node, edit the YAML,
build a metapipeline and open its nested pipeline, and render a 300-node pipeline."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Locator, Page, expect

from tests.api.conftest import Server
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

# the tests build on each other (the pipeline saved by the first is opened by the next ones): one worker
# runs a file's tests, in order (`pytest -n 2 --dist loadfile`, as `make test` does)

IRIS = yaml.safe_load((Path(__file__).parents[2] / "catalogue/pipelines/iris-classifier.yaml").read_text())
HOSTILE = '<img src=x onerror="window.__pwned=1"> "${{ secrets.X }}'


def node(page: Page, step: str) -> Locator:
    return page.locator(f'.react-flow__node[data-id="{step}"]')


def handle(page: Page, step: str, port: str, side: str) -> Locator:
    return node(page, step).locator(f'.react-flow__handle.{side}[data-handleid="{port}"]')


def centre(loc: Locator) -> tuple[float, float]:
    box = loc.bounding_box()
    assert box, loc
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag_connection(page: Page, src: str, out: str, dst: str, inp: str) -> None:
    """Press on an output handle and move to an input handle (the caller releases)."""
    page.mouse.move(*centre(handle(page, src, out, "source")))
    page.mouse.down()
    x, y = centre(handle(page, dst, inp, "target"))
    page.mouse.move(x - 30, y, steps=5)
    page.mouse.move(x, y, steps=5)


def connect(page: Page, src: str, out: str, dst: str, inp: str) -> None:
    edges = page.locator(".react-flow__edge").count()
    drag_connection(page, src, out, dst, inp)
    expect(page.get_by_test_id("connect-hint")).to_contain_text("Connect")
    page.mouse.up()
    expect(page.locator(".react-flow__edge")).to_have_count(edges + 1)


def drop(page: Page, uses: str, x: int, y: int) -> None:
    """Drag a palette entry onto the canvas (HTML5 drag and drop, real mouse events)."""
    page.locator(f'[data-entry="{uses}"]').drag_to(
        page.locator(".react-flow__pane"), target_position={"x": x, "y": y}
    )


def select_step(page: Page, step: str) -> None:
    """Select a step by clicking its title. On a loaded machine a click that lands while the canvas redraws
    the node (a field's edit being committed on blur) can be lost; click again until the deadline."""
    panel = page.get_by_role("region", name=f"step {step}")
    deadline = time.monotonic() + 30
    while True:
        node(page, step).locator(".step-title").click()
        try:
            expect(panel).to_be_visible(timeout=3_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def rename(page: Page, old: str, new: str) -> None:
    select_step(page, old)
    page.get_by_label("step id").fill(new)
    page.get_by_label("step id").press("Enter")
    expect(node(page, new)).to_be_visible()


def set_param(page: Page, step: str, field: str, value: str) -> None:
    """Set a parameter through the step's form (a select or a text field, whichever the form shows)."""
    f = page.locator(f'.step-params [id^="step-{step}"][id$="{field}"]').first
    if f.evaluate("e => e.tagName") == "SELECT":
        f.select_option(value)
    else:
        f.fill(value)
    f.press("Tab")  # a field edit is committed when the field is left


def type_into(page: Page, editor: Locator, text: str) -> None:
    """Replace a CodeMirror editor's text as a user does: select all, delete, type (Playwright's fill of a
    contenteditable makes Chromium write inline styles, which the page's CSP refuses)."""
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    page.keyboard.insert_text(text)


def save(page: Page, message: str) -> None:
    page.get_by_role("button", name="Save…").click()
    dialog = page.get_by_role("dialog", name="Save a version")
    dialog.get_by_label("commit message").fill(message)
    dialog.get_by_role("button", name="Save ").click()
    expect(dialog).to_be_hidden()


def steps_of(server: Server, kind: str, name: str) -> dict[str, Any]:
    with server.client(server.admin_key) as api:
        r = api.get(f"/api/v1/catalogue/{kind}/{name}")
        assert r.status_code == 200, r.text
        return dict(yaml.safe_load(r.json()["text"]))


@pytest.fixture(scope="module")
def page(ui_server: Server, browser: Browser) -> Page:
    return signed_in(browser, ui_server)


def test_build_iris_by_drag_and_drop_and_save(ui_server: Server, page: Page, shots: Path) -> None:
    errors = watch_errors(page)
    page.goto(ui_server.url + "/builder/new/pipeline")
    expect(page.get_by_text("Drag a playbook or pipeline")).to_be_visible()
    page.get_by_label("pipeline name").fill("iris-by-hand")
    page.get_by_label("pipeline name").press("Enter")

    page.get_by_label("search the palette").fill("sklearn-dataset")
    drop(page, "playbook/sklearn-dataset@1.0.0", 120, 150)
    page.get_by_label("search the palette").fill("")
    drop(page, "pipeline/tabular-classification@1.0.0", 400, 200)
    drop(page, "playbook/export-model@1.0.0", 680, 150)
    expect(page.locator(".react-flow__node")).to_have_count(3)
    rename(page, "sklearn-dataset", "load")
    rename(page, "tabular-classification", "classify")
    rename(page, "export-model", "export")

    # an incompatible connection is refused while dragging, with the reason
    drag_connection(page, "load", "dataset", "export", "model")
    hint = page.get_by_test_id("connect-hint")
    expect(hint).to_contain_text("Cannot connect load.dataset → export.model")
    expect(hint).to_contain_text("the input expects model")
    page.mouse.up()
    expect(page.locator(".react-flow__edge")).to_have_count(0)

    connect(page, "load", "dataset", "classify", "dataset")
    connect(page, "classify", "model", "export", "model")
    connect(page, "classify", "metrics", "export", "metrics")

    select_step(page, "load")
    set_param(page, "load", "name", "wine")
    set_param(page, "load", "name", "iris")
    select_step(page, "export")
    set_param(page, "export", "version", "not-a-version")  # flagged on its field by the server
    expect(node(page, "export").locator(".step-node")).to_have_attribute("data-invalid", "true")
    expect(page.locator(".step-params")).to_contain_text("not-a-version")
    set_param(page, "export", "version", "1.0.0")
    set_param(page, "export", "name", "iris-classifier")
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    page.screenshot(path=shots / "builder.png")
    assert not violations(page), violations(page)

    # the pipeline's own output (what a run offers to download), from the graph's settings
    page.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    settings = page.get_by_role("region", name="pipeline settings")
    settings.get_by_role("button", name="Add output").click()
    settings.get_by_label(re.compile(r"source of output \w+")).select_option("classify.metrics")
    expect(page.get_by_test_id("validity")).to_have_text("valid")

    # a pipeline parameter: its default typed key by key is one undoable change, adding it another
    settings.get_by_role("button", name="Add parameter").click()
    settings.get_by_label("default of param_1").press_sequentially("abc")
    page.locator(".react-flow__pane").click(position={"x": 5, "y": 5})
    expect(settings.get_by_label("default of param_1")).to_have_value("abc")
    page.keyboard.press("Control+z")
    expect(settings.get_by_label("default of param_1")).to_have_value("")
    page.keyboard.press("Control+z")
    expect(settings.get_by_label("default of param_1")).to_have_count(0)
    expect(page.get_by_test_id("validity")).to_have_text("valid")

    save(page, "iris, built by hand")
    expect(page).to_have_url(f"{ui_server.url}/builder/pipeline/iris-by-hand?version=0.1.0")
    saved = steps_of(ui_server, "pipeline", "iris-by-hand")
    assert [(s["id"], s["uses"], s.get("inputs", {})) for s in saved["spec"]["steps"]] == [
        (s["id"], s["uses"], s.get("inputs", {})) for s in IRIS["spec"]["steps"]
    ]
    assert saved["spec"]["steps"][0]["with"] == {"name": "iris"}
    with ui_server.client(ui_server.admin_key) as api:
        history = api.get("/api/v1/catalogue/pipeline/iris-by-hand/history").json()
    assert history[0]["message"].startswith("iris, built by hand")
    expect(node(page, "classify")).to_be_visible()  # the saved version reopened, positions kept
    page.get_by_role("button", name="Launch…").click()  # the launch dialog, with the saved version
    launch = page.get_by_role("dialog")
    expect(launch).to_contain_text("iris-by-hand")
    launch.get_by_role("button", name="Cancel").click()
    expect(launch).to_be_hidden()

    # the whole loop: launch the saved version on local, every step turns green live, the metrics chart,
    # an artifact downloaded
    page.get_by_role("button", name="Launch…").click()
    launch = page.get_by_role("dialog")
    expect(launch.get_by_label("Run on")).to_have_value("local")
    expect(launch.get_by_test_id("validation")).to_contain_text("Valid")
    launch.get_by_role("button", name="Review plan").click()
    expect(launch.get_by_test_id("plan")).to_contain_text("Nothing is provisioned")
    launch.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(f"{ui_server.url}/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    page.evaluate("window.__sameDocument = true")
    with ui_server.client(ui_server.admin_key) as api:
        steps = api.get(f"/api/v1/runs/{run_id}").json()["steps"]
    nodes = page.locator("[data-node]")
    expect(nodes).to_have_count(len(steps))
    for i in range(len(steps)):
        expect(nodes.nth(i)).to_have_attribute("data-status", "succeeded", timeout=120_000)
    assert page.evaluate("window.__sameDocument") is True  # followed live, never reloaded
    page.get_by_role("tab", name="Metrics").click()
    expect(page.locator('.metric-chart[data-metric="accuracy"] canvas')).to_be_visible()
    page.get_by_role("tab", name="Artifacts").click()
    row = page.locator("[data-artifact]").filter(has=page.get_by_role("link", name="Download")).first
    name = row.get_attribute("data-artifact")
    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    with ui_server.client(ui_server.admin_key) as api:
        run = api.get(f"/api/v1/runs/{run_id}").json()
        assert run["pipeline"].startswith("pipeline/iris-by-hand@")
        assert (
            Path(info.value.path()).read_bytes() == api.get(f"/api/v1/runs/{run_id}/artifacts/{name}").content
        )
    assert not errors, errors


def test_delete_undo_redo_and_yaml(ui_server: Server, page: Page, shots: Path) -> None:
    errors = watch_errors(page)
    page.goto(ui_server.url + "/catalogue/pipeline/iris-by-hand")
    page.get_by_role("link", name="Open in builder").click()
    expect(page).to_have_url(f"{ui_server.url}/builder/pipeline/iris-by-hand?version=0.1.0")
    expect(page.locator(".react-flow__edge")).to_have_count(3)

    # Backspace in a form field edits the field, never deletes the node
    select_step(page, "load")
    page.get_by_label("step id").press("End")
    page.get_by_label("step id").press("Backspace")
    expect(page.locator(".react-flow__node")).to_have_count(3)
    page.get_by_label("step id").press("Escape")

    select_step(page, "load")
    page.keyboard.press("Delete")
    expect(page.locator(".react-flow__node")).to_have_count(2)
    expect(page.locator(".react-flow__edge")).to_have_count(2)
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__node")).to_have_count(3)
    expect(page.locator(".react-flow__edge")).to_have_count(3)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator(".react-flow__node")).to_have_count(2)
    page.keyboard.press("Control+y")  # nothing left to redo
    page.keyboard.press("Control+z")
    expect(page.locator(".react-flow__edge")).to_have_count(3)

    page.get_by_role("button", name="YAML").click()
    editor = page.get_by_role("textbox", name="pipeline YAML")
    expect(editor).to_contain_text("dataset: load.dataset")  # the connection came back
    expect(editor).to_contain_text("name: iris")  # and the parameters
    text = editor.inner_text()

    type_into(page, editor, "spec: [")
    expect(page.get_by_test_id("yaml-error")).to_contain_text("line")
    expect(page.locator(".react-flow__node")).to_have_count(3)  # nothing changed

    edited = text.replace("id: export", "id: package").replace("export.bundle", "package.bundle")
    type_into(page, editor, edited)
    page.get_by_role("button", name="Apply").click()
    expect(node(page, "package")).to_be_visible()
    expect(node(page, "export")).to_have_count(0)
    expect(page.locator(".react-flow__edge")).to_have_count(3)
    page.screenshot(path=shots / "builder-yaml.png")
    assert not violations(page), violations(page)

    page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})
    page.keyboard.press("Control+z")  # the YAML edit is one change
    expect(node(page, "export")).to_be_visible()
    expect(node(page, "package")).to_have_count(0)
    expect(editor).to_contain_text("id: export")  # the YAML follows the canvas
    assert not errors, errors


def test_metapipeline_opens_its_nested_pipeline(ui_server: Server, page: Page, shots: Path) -> None:
    errors = watch_errors(page)
    with ui_server.client(ui_server.admin_key) as api:
        hostile = {**IRIS, "metadata": {**IRIS["metadata"], "name": "hostile", "description": HOSTILE}}
        r = api.post("/api/v1/catalogue", json={"spec": hostile})
        assert r.status_code == 201, r.text
    page.goto(ui_server.url + "/builder/new/metapipeline")
    page.get_by_label("pipeline name").fill("two-classifiers")
    page.get_by_label("pipeline name").press("Enter")
    palette = page.get_by_role("complementary", name="palette")
    expect(palette.locator('[data-entry="playbook/sklearn-dataset@1.0.0"]')).to_have_count(0)
    page.get_by_label("search the palette").fill("hostile")
    expect(palette).to_contain_text(HOSTILE)  # shown as text, never as markup
    assert page.evaluate("window.__pwned") is None
    page.get_by_label("search the palette").fill("")

    drop(page, "pipeline/iris-by-hand@0.1.0", 150, 150)
    drop(page, "pipeline/iris-classifier@1.0.0", 150, 380)
    expect(page.locator(".react-flow__node")).to_have_count(2)
    select_step(page, "iris-classifier")
    step = page.get_by_role("region", name="step iris-classifier")
    step.get_by_role("combobox", name="Target", exact=True).select_option("local")
    expect(page.get_by_test_id("validity")).to_have_text("valid")
    save(page, "two classifiers")
    expect(page).to_have_url(f"{ui_server.url}/builder/metapipeline/two-classifiers?version=0.1.0")
    saved = steps_of(ui_server, "metapipeline", "two-classifiers")
    assert [s["uses"] for s in saved["spec"]["steps"]] == [
        "pipeline/iris-by-hand@0.1.0",
        "pipeline/iris-classifier@1.0.0",
    ]
    assert saved["spec"]["steps"][1]["target"] == {"provider": "local"}

    node(page, "iris-by-hand").get_by_role("button", name="open iris-by-hand").click()
    crumbs = page.get_by_role("navigation", name="breadcrumbs")
    expect(crumbs).to_contain_text("iris-by-hand (pipeline/iris-by-hand@0.1.0)")
    expect(page.locator(".react-flow__node")).to_have_count(3)
    expect(node(page, "load").locator(".react-flow__handle")).to_have_count(1)  # its ports read
    expect(page.locator(".react-flow__edge")).to_have_count(3)
    page.screenshot(path=shots / "builder-meta.png")
    assert not violations(page), violations(page)
    crumbs.get_by_role("button", name="metapipeline two-classifiers").click()
    expect(page.locator(".react-flow__node")).to_have_count(2)
    assert not errors, errors


def big_pipeline(n: int) -> dict[str, Any]:
    """`n` steps: a dataset, a split, and scale-features steps fanning out three ways per level."""
    steps: list[dict[str, Any]] = [
        {"id": "s0", "uses": "playbook/sklearn-dataset@1.0.0"},
        {"id": "s1", "uses": "playbook/train-test-split@1.0.0", "inputs": {"dataset": "s0.dataset"}},
    ]
    for i in range(2, n):
        parent = 1 + (i - 2) // 3
        steps.append(
            {
                "id": f"s{i}",
                "uses": "playbook/scale-features@1.0.0",
                "inputs": {"train": f"s{parent}.train", "test": f"s{parent}.test"},
            }
        )
    return {
        "apiVersion": "mlops-nocode/v1",
        "kind": "Pipeline",
        "metadata": {"name": f"fan-out-{n}", "version": "1.0.0"},
        "spec": {"steps": steps},
    }


def test_a_300_node_pipeline_renders_every_node(ui_server: Server, page: Page) -> None:
    errors = watch_errors(page)
    with ui_server.client(ui_server.admin_key) as api:
        r = api.post("/api/v1/catalogue", json={"spec": big_pipeline(300)})
        assert r.status_code == 201, r.text
    page.goto(ui_server.url + "/builder/pipeline/fan-out-300")
    expect(page.locator(".react-flow__node")).to_have_count(300, timeout=30_000)
    expect(page.locator(".react-flow__edge")).to_have_count(299 * 2 - 1, timeout=30_000)
    expect(page.get_by_test_id("validity")).to_have_text("valid", timeout=30_000)
    assert not errors, errors
