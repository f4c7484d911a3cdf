"""The run page's Infrastructure section in a real browser against `mlops up`: a run whose terraform
step kept its workspace (not ephemeral) shows what the state holds; "Destroy infrastructure" destroys it
through the gateway, and the section then says so."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.api.conftest import Server, wait_status
from tests.api.test_gateway_infra_destroy import docs
from tests.web.axe import violations
from tests.web.conftest import signed_in, watch_errors


def test_kept_infrastructure_is_shown_and_destroyed(ui_server: Server, browser: Browser, shots: Path) -> None:
    with ui_server.client(ui_server.admin_key) as admin:
        assert (
            admin.put("/api/v1/secrets/INFRA_TOKEN", json={"value": "web-infra-token-1"}).status_code == 201
        )
        run_id = admin.post("/api/v1/runs", json={"pipeline": docs("web-kept")}).json()["id"]
        assert wait_status(admin, run_id, timeout=120) == "succeeded"
    page = signed_in(browser, ui_server)
    errors = watch_errors(page)
    page.goto(f"{ui_server.url}/runs/{run_id}")
    section = page.get_by_role("region", name="infrastructure")
    expect(section).to_contain_text("terraform_data.box")
    page.screenshot(path=shots / "run-infrastructure.png", full_page=True)
    assert not violations(page), violations(page)
    page.once("dialog", lambda d: d.accept())
    section.get_by_role("button", name="Destroy infrastructure").click()
    expect(section).to_contain_text("none (destroyed)")
    expect(section.get_by_role("button", name="Destroy infrastructure")).to_have_count(0)
    assert "web-infra-token-1" not in page.content()
    assert not errors, errors
