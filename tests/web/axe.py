"""Accessibility basics with axe-core (the npm package the UI's build installs, run in the page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def violations(page: Page, impact: tuple[str, ...] = ("critical",)) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now, of the given impacts (critical only by default):
    each with its rule id, help text and the offending elements' selectors."""
    assert AXE.is_file(), f"axe-core is missing: run make ui (it installs {AXE})"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated by the driver: the page's CSP is untouched
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in found if v["impact"] in impact]
