"""A real gateway (`mlops up`) for the UI's tests, and its login URL as `mlops up` printed it."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mlops_nocode import web
from tests.api.conftest import Server


def login_url(server: Server) -> str:
    """The login URL the gateway printed at first start (`login: http://.../?token=...`)."""
    found = re.search(r"login: (http://\S+/\?token=\S+)", server.log.read_text())
    assert found, server.log.read_text()
    return found.group(1)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway serving the built UI (the tests need it built: `make ui`)."""
    assert web.built(), f"the UI is not built: run {web.BUILD_HINT}"
    s = Server(tmp_path_factory.mktemp("ui") / "home", POLL_SECONDS="0.1")
    s.start()
    yield s
    s.stop()


CHROMIUM = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "the browser tests need chromium: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def watch_errors(page: Page) -> list[str]:
    """The page's script errors and console errors, as they happen (a blocked script or style under the
    Content-Security-Policy is one). Refused requests ("Failed to load resource") are left out: the API's
    refusals a test provokes on purpose are expected."""
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def signed_in(browser: Browser, server: Server) -> Page:
    """A new page of a new browser context, signed in through the login URL the gateway printed."""
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(login_url(server))
    page.wait_for_url(server.url + "/")
    return page
