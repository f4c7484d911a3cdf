"""Home, catalogue (labels, diff), targets, secrets, API keys and the shell's banners, in a real browser
against `mlops up`: every request stays on the gateway's origin, a secret's value never comes back, a
non-admin session is told what it needs, a session revoked elsewhere gets the "sign in again" banner, and
axe-core finds no critical or serious violation on any of these screens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Response, expect

from tests.api.conftest import Server, sleeper, wait_status
from tests.web.axe import violations
from tests.web.conftest import login_url, watch_errors

VIEWPORT = {"width": 1280, "height": 800}
HOSTILE = '<img src=x onerror="window.__pwned=1"> " ${{ secrets.X }}'
IMPACTS = ("critical", "serious")


def _page(browser: Browser, server: Server, scopes: str | None = None) -> Page:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(login_url(server) + (f"&scopes={scopes}" if scopes else ""))
    page.wait_for_url(server.url + "/")
    return page


def _no_violations(page: Page, screen: str) -> None:
    found = violations(page, IMPACTS)
    assert not found, (screen, found)


class Pending:
    """The page's requests still in flight, counted from Playwright's request events."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.flying: set[Request] = set()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)
        self.page = page

    def _start(self, r: Request) -> None:
        self.urls.append(r.url)
        if r.resource_type != "eventsource":  # a live stream stays open: not awaited
            self.flying.add(r)

    def _end(self, r: Request) -> None:
        self.flying.discard(r)

    def settle(self, deadline_s: float = 15.0) -> None:
        """Wait until no request has been in flight for three polls in a row (a screen's effects start
        their requests right after it renders)."""
        quiet, end = 0, time.monotonic() + deadline_s
        while quiet < 3:
            assert time.monotonic() < end, f"requests still in flight: {[r.url for r in self.flying]}"
            quiet = 0 if self.flying else quiet + 1
            self.page.wait_for_timeout(100)


def _shot(page: Page, shots: Path, name: str) -> None:
    page.screenshot(path=shots / name)  # the viewport only: small PNGs for docs/UI.md


@pytest.fixture(scope="module")
def entries(ui_server: Server) -> Iterator[str]:
    """Two labelled playbooks, the first with a second version and a hostile description."""
    with ui_server.client(ui_server.admin_key) as api:
        for name, labels in (("adm-a", {"task": "classify", "team": "red"}), ("adm-b", {"task": "regress"})):
            pb = json.loads(json.dumps(sleeper(name, [("a", 0.01)])[0]))
            pb["metadata"]["labels"] = labels
            pb["metadata"]["description"] = "first version"
            r = api.post("/api/v1/catalogue", json={"spec": pb, "message": f"add {name}"})
            assert r.status_code == 201, r.text
            if name == "adm-a":
                pb["metadata"]["version"] = "1.1.0"
                pb["metadata"]["description"] = HOSTILE
                r = api.post("/api/v1/catalogue", json={"spec": pb, "base": "1.0.0", "message": "describe"})
                assert r.status_code == 201, r.text
    yield "adm-a-sleep"


def test_every_request_stays_on_the_gateway_origin(ui_server: Server, browser: Browser, shots: Path) -> None:
    with ui_server.client(ui_server.admin_key) as api:  # a finished run for the home page to list
        r = api.post("/api/v1/runs", json={"pipeline": sleeper("adm-home", [("a", 0.01), ("b", 0.01)])})
        assert r.status_code == 202, r.text
        assert wait_status(api, r.json()["id"]) == "succeeded"
    page = _page(browser, ui_server)
    errors = watch_errors(page)
    pending = Pending(page)
    requests = pending.urls
    page.goto(ui_server.url + "/")
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    counts = page.get_by_test_id("counts")
    expect(counts).to_contain_text("pipelines")
    expect(counts.locator('a[href="/catalogue?kind=pipeline"]')).not_to_contain_text("…")
    for name, href in [
        ("New pipeline", "/builder/new/pipeline"),
        ("New meta-pipeline", "/builder/new/metapipeline"),
        ("New playbook", "/editor/new"),
    ]:
        expect(page.locator("main").get_by_role("link", name=name)).to_have_attribute("href", href)
    _shot(page, shots, "home.png")
    _no_violations(page, "home")
    page.keyboard.press("Tab")  # the first stop skips the navigation
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    nav = page.get_by_role("navigation").first
    for link in ("Catalogue", "Builder", "Runs", "Targets", "Secrets", "Keys", "Home"):
        item = nav.get_by_role("link", name=link, exact=True)
        item.click()
        expect(item).to_have_class("active")
        pending.settle()  # whatever the screen asks for has been asked
    for path in ("/editor/new", "/builder/new/metapipeline", "/runs?status=running"):
        page.goto(ui_server.url + path)
        pending.settle()
    page.goto(ui_server.url + "/catalogue/pipeline/iris-classifier")
    page.get_by_text("Source (YAML)").click()  # the lazily loaded code editor's chunk
    expect(page.get_by_role("textbox", name="YAML source")).to_contain_text("iris-classifier")
    assert len(requests) > 20, requests
    foreign = [u for u in requests if not u.startswith(ui_server.url + "/")]
    assert not foreign, foreign
    # no web font: every face the page uses is the system's
    assert page.evaluate("document.fonts.size") == 0
    assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
    assert not errors, errors


def test_catalogue_labels_and_diff_of_two_versions(
    ui_server: Server, browser: Browser, shots: Path, entries: str
) -> None:
    page = _page(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/catalogue?kind=playbook&search=adm-")
    table = page.get_by_test_id("entries")
    expect(table.get_by_role("row")).to_have_count(3)  # header + 2
    chips = page.get_by_test_id("labels")
    chips.get_by_role("button", name="task=classify").click()
    expect(page).to_have_url(f"{ui_server.url}/catalogue?kind=playbook&search=adm-&label=task%3Dclassify")
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table).to_contain_text(entries)
    expect(table).to_contain_text(HOSTILE)  # a hostile description is text, never markup
    assert table.locator("img").count() == 0 and page.evaluate("window.__pwned") is None
    expect(chips.get_by_role("button", name="task=classify")).to_have_attribute("aria-pressed", "true")
    _shot(page, shots, "catalogue.png")
    _no_violations(page, "catalogue")
    # by keyboard: a chip toggles with Enter, and the focused one shows a visible outline
    chip = chips.get_by_role("button", name="team=red")
    chip.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(
        f"{ui_server.url}/catalogue?kind=playbook&search=adm-&label=task%3Dclassify&label=team%3Dred"
    )
    expect(table.get_by_role("row")).to_have_count(2)
    chips.get_by_role("button", name="team=red").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    expect(chips.get_by_role("button", name="team=red")).to_have_attribute("aria-pressed", "false")

    table.get_by_role("link", name=entries).click()
    expect(page).to_have_url(f"{ui_server.url}/catalogue/playbook/{entries}")
    expect(page.get_by_role("combobox", name="version")).to_have_value("1.1.0")
    _no_violations(page, "entry")
    diff = page.get_by_test_id("diff")
    expect(diff.get_by_role("combobox", name="diff from")).to_have_value("1.0.0")
    expect(diff.get_by_role("combobox", name="diff to")).to_have_value("1.1.0")
    added = diff.locator(".diff .add")
    removed = diff.locator(".diff .del")
    expect(added.filter(has_text="version: 1.1.0")).to_have_count(1)
    expect(removed.filter(has_text="version: 1.0.0")).to_have_count(1)
    expect(added.filter(has_text="onerror")).to_have_count(1)
    assert diff.locator("img").count() == 0 and page.evaluate("window.__pwned") is None
    diff.get_by_role("region").scroll_into_view_if_needed()
    _shot(page, shots, "diff.png")
    _no_violations(page, "diff")
    # the other way round, and the same version twice
    diff.get_by_role("combobox", name="diff from").select_option("1.1.0")
    diff.get_by_role("combobox", name="diff to").select_option("1.0.0")
    expect(added.filter(has_text="version: 1.0.0")).to_have_count(1)
    diff.get_by_role("combobox", name="diff to").select_option("1.1.0")
    expect(diff).to_contain_text("No difference between 1.1.0 and 1.1.0")
    # history opens a version; used-by links open the version that uses the entry
    page.locator(".history").get_by_role("link", name="1.0.0").click()
    expect(page.get_by_role("combobox", name="version")).to_have_value("1.0.0")
    page.goto(ui_server.url + "/catalogue/playbook/sklearn-train")
    used = page.locator(".used-by").get_by_role("link").first
    expect(used).to_contain_text("pipeline/")
    target = used.inner_text()
    used.click()
    expect(page.get_by_role("combobox", name="version")).to_have_value(target.split("@")[1])
    assert not errors, errors


def test_targets_show_state_offers_and_prices(ui_server: Server, browser: Browser, shots: Path) -> None:
    page = _page(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/targets")
    local = page.locator('[data-provider="local"]')
    expect(local.locator("[data-state]")).to_have_attribute("data-state", "available")
    expect(local.get_by_role("table")).to_contain_text("this-machine")
    k3s = page.locator('[data-provider="k3s"]')
    expect(k3s.locator("[data-state]")).to_have_attribute("data-state", "missing")
    expect(k3s.get_by_test_id("missing")).to_contain_text("KUBECONFIG")
    expect(page.get_by_test_id("summary")).to_contain_text("Cheapest available offer")
    for section in page.locator("[data-provider]").all():  # cheapest first in every provider
        prices = [float(p.split()[0]) for p in section.locator("td.price").all_inner_texts()]
        assert prices == sorted(prices), prices
    _shot(page, shots, "targets.png")
    _no_violations(page, "targets")
    assert not errors, errors


def test_a_secret_is_write_only_in_the_page(ui_server: Server, browser: Browser, shots: Path) -> None:
    page = _page(browser, ui_server)
    errors = watch_errors(page)
    values = ["first-Secret-VALUE-8c1d", "second-Secret-VALUE-77ab"]
    writes: list[Request] = []
    bodies: list[str] = []

    def seen(r: Response) -> None:
        if "/api/" in r.url:
            bodies.append(r.text())

    page.on("request", lambda r: writes.append(r) if r.method in ("PUT", "DELETE") else None)
    page.on("response", seen)
    page.on("dialog", lambda d: d.accept())
    page.goto(ui_server.url + "/secrets")
    form = page.get_by_role("form", name="set a secret")
    value = form.get_by_label("Value (write-only)")
    assert value.get_attribute("type") == "password" and value.get_attribute("autocomplete") == "off"
    form.get_by_label("Name").fill("ADMIN_UI_TOKEN")
    value.fill(values[0])
    form.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("status")).to_contain_text("Set secret ADMIN_UI_TOKEN")
    row = page.locator('[data-secret="ADMIN_UI_TOKEN"]')
    expect(row).to_be_visible()
    expect(value).to_have_value("")
    row.get_by_role("button", name="replace ADMIN_UI_TOKEN").click()
    expect(form.get_by_label("Name")).to_have_value("ADMIN_UI_TOKEN")
    expect(value).to_be_focused()
    value.fill(values[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Replaced secret ADMIN_UI_TOKEN")
    _shot(page, shots, "secrets.png")
    _no_violations(page, "secrets")
    # a bad value is refused where it was typed, with the gateway's reason
    form.get_by_label("Name").fill("SHORT")
    value.fill("abcd")
    value.evaluate("e => e.value = 'ab'")  # shorter than the field allows: what the API says shows
    value.evaluate("e => e.removeAttribute('minlength')")
    form.get_by_role("button", name="Save secret").click()
    expect(page.get_by_role("alert")).to_contain_text("body.value")
    expect(page.locator('[data-secret="SHORT"]')).to_have_count(0)
    # a hostile name is refused in place, shown as text, and nothing is sent
    form.get_by_label("Name").fill(HOSTILE)
    value.fill("long-enough")
    form.get_by_role("button", name="Save secret").click()
    expect(page.locator(".problems").first).to_contain_text("invalid secret name")
    expect(page.locator(".problems").first).to_contain_text("onerror")
    assert page.locator("main img").count() == 0 and page.evaluate("window.__pwned") is None
    row.get_by_role("button", name="delete ADMIN_UI_TOKEN").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted secret ADMIN_UI_TOKEN")
    expect(row).to_have_count(0)

    html = page.content()
    storage = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    for v in values:
        assert v not in html and v not in storage
        assert not [b for b in bodies if v in b], "a secret's value came back in an API answer"
    assert len(writes) == 4 and all(w.headers.get("x-csrf-token") for w in writes), [w.url for w in writes]
    # the same write without the session's token is refused
    refused = page.evaluate(
        """async () => (await fetch('/api/v1/secrets/NO_TOKEN', {method: 'PUT',
           headers: {'Content-Type': 'application/json'},
           body: JSON.stringify({value: 'xxxxxxxx'})})).status"""
    )
    assert refused == 403
    with ui_server.client(ui_server.admin_key) as api:
        assert all(s["name"] != "NO_TOKEN" for s in api.get("/api/v1/secrets").json())
    assert not errors, errors


def test_api_keys_for_an_admin_session_and_a_clear_message_for_others(
    ui_server: Server, browser: Browser, shots: Path
) -> None:
    plain = _page(browser, ui_server)
    plain.goto(ui_server.url + "/keys")
    expect(plain.get_by_test_id("needs-admin")).to_contain_text("needs the admin scope")
    expect(plain.get_by_test_id("needs-admin")).to_contain_text("read, write")
    _no_violations(plain, "keys (not admin)")

    page = _page(browser, ui_server, "read,write,admin")
    errors = watch_errors(page)
    dialogs: list[str] = []

    def answer(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()

    page.on("dialog", answer)
    page.goto(ui_server.url + "/keys")
    form = page.get_by_role("form", name="create an API key")
    form.get_by_label("Name").fill("ui-made")
    form.get_by_label("Your admin API key (used once, not kept)").fill("mlk_wrong")
    form.get_by_role("button", name="Create key").click()
    expect(page.locator(".problems")).to_contain_text("Fix:")  # the refusal shows in place
    expect(page.get_by_test_id("banner")).to_have_count(0)  # a wrong key is not a lost session
    form.get_by_label("Name").fill("ui-made")
    form.get_by_label("Your admin API key (used once, not kept)").fill(ui_server.admin_key)
    form.get_by_role("button", name="Create key").click()
    created = page.get_by_test_id("created-key")
    expect(created).to_contain_text("shown only this once")
    key = page.get_by_test_id("key-value").inner_text()
    assert key.startswith("mlk_")
    expect(form.get_by_label("Your admin API key (used once, not kept)")).to_have_value("")
    row = page.locator("[data-key]").filter(has_text="ui-made")
    expect(row).to_have_count(1)
    expect(page.get_by_test_id("sessions")).to_contain_text("(this one)")
    _shot(page, shots, "keys.png")
    _no_violations(page, "keys")
    with ui_server.client(key) as api:
        assert api.get("/api/v1/auth/whoami").json()["name"] == "ui-made"
    page.get_by_role("button", name="I have stored it").click()
    expect(created).to_have_count(0)
    assert key not in page.content()
    # the last admin key cannot be revoked: the gateway's reason shows on the page
    page.locator("[data-key]").filter(has_text="admin").first.get_by_role("button").click()
    expect(page.locator(".problems").first).to_contain_text("create another admin key first")
    row.get_by_role("button", name="revoke ui-made").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked ui-made")
    assert dialogs and "Revoke the key ui-made" in dialogs[-1]
    expect(row).to_contain_text("revoked")
    with ui_server.client(key) as api:
        assert api.get("/api/v1/auth/whoami").status_code == 401
    assert not errors, errors


def test_a_session_ended_elsewhere_and_a_lost_network_show_a_banner(
    ui_server: Server, browser: Browser, shots: Path
) -> None:
    page = _page(browser, ui_server)
    page.goto(ui_server.url + "/runs")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    _no_violations(page, "runs")
    session = page.evaluate("async () => (await (await fetch('/api/v1/session')).json()).id")
    with ui_server.client(ui_server.admin_key) as api:
        assert api.delete(f"/api/v1/sessions/{session}").status_code == 200
    page.get_by_role("navigation").first.get_by_role("link", name="Targets").click()
    expect(page.get_by_test_id("session-lost")).to_contain_text("Your session ended")
    expect(page.locator("main .problems")).to_contain_text("sign in again")

    other = _page(browser, ui_server)
    pending = Pending(other)
    other.goto(ui_server.url + "/runs")
    pending.settle()  # no answer of this page arrives after the network is gone
    other.context.set_offline(True)
    other.get_by_role("navigation").first.get_by_role("link", name="Catalogue").click()
    expect(other.get_by_test_id("offline")).to_contain_text("cannot be reached")
    other.context.set_offline(False)
    other.get_by_role("navigation").first.get_by_role("link", name="Runs").click()
    expect(other.get_by_test_id("offline")).to_have_count(0)


def test_the_accessibility_check_can_fail(ui_server: Server, browser: Browser) -> None:
    """axe finds a nameless button and an image without alt text (so its silence elsewhere means
    something)."""
    page = _page(browser, ui_server)
    expect(page.get_by_role("heading", name="Home")).to_be_visible()
    page.evaluate(
        "() => { const b = document.createElement('button'); const i = document.createElement('img');"
        " i.src = '/favicon.ico'; document.querySelector('main').append(b, i); }"
    )
    found = {v["id"] for v in violations(page)}
    assert {"button-name", "image-alt"} <= found, found
