"""A real gateway (`mlops up`) for the UI's tests, and its login URL as `mlops up` printed it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

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
