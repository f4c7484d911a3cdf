"""The playbook editor's AI assistant panel in a real browser against `mlops up`, its model route on the
scripted backend (it stands in for a model): ask, see the written playbook checked and test-run (after
one repair), take it into the editor; a hostile answer shows as text only; nothing is saved by asking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from mlops_nocode.integrations.litellm.routes import ModelRoute, save_route
from tests.ai.support import PLAYBOOK, fenced
from tests.api.conftest import Server
from tests.fakellm import FakeLLM
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors

HOSTILE = '<img src=x onerror="document.title=1">'


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    backend = FakeLLM()
    yield backend
    backend.stop()


def test_the_assistant_writes_a_tested_playbook_into_the_editor(
    ui_server: Server, browser: Browser, llm: FakeLLM, shots: Path
) -> None:
    save_route(ui_server.home, ModelRoute(name="assistant", model="openai/fake", api_base=llm.url))
    hostile = PLAYBOOK.replace("Count the words of a text", f"'{HOSTILE}'")
    llm.script(chat=[fenced(hostile), fenced(hostile.replace("FIRST", "words[0]"))])
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(ui_server.url + "/editor/new")
    page.get_by_label("AI assistant: describe what this step does").fill("count the words of a text")
    page.get_by_role("button", name="Ask the assistant").click()
    answer = page.get_by_label("assistant answer")
    done = "playbook/word-count@0.1.0 is valid and ran once on its samples (1 repair)"
    expect(answer).to_contain_text(done, timeout=120_000)
    expect(page.get_by_label("test run outputs")).to_contain_text('"first": "hello"')
    expect(page.get_by_label("assistant spec")).to_contain_text(HOSTILE)  # shown as text
    assert page.locator("img").count() == 0
    page.screenshot(path=str(shots / "assistant-panel.png"), full_page=True)
    assert not violations(page), violations(page)

    page.get_by_role("button", name="Use this draft").click()
    identity = page.locator("section[aria-labelledby=identity-title]")
    expect(identity.get_by_label("Name")).to_have_value("word-count")
    expect(page.get_by_role("textbox", name="step code")).to_contain_text('"first": words[0]')
    with ui_server.client(ui_server.admin_key) as admin:
        unknown = admin.get("/api/v1/catalogue/playbook/word-count")
        assert unknown.status_code == 422 and "unknown playbook" in unknown.text, "asking saves nothing"
    assert errors == [], errors
