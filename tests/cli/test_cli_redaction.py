"""`mlops run` with a secret from the environment that holds quotes, backslashes, tabs, non-ASCII, or a
whole PEM key: what the CLI prints (progress, log lines, the summary, --json, --events -) never shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.redaction_support import NASTY, assert_no_secret_in_text
from tests.runtime.test_redaction_runs import SPEC


@pytest.mark.parametrize("secret", [NASTY[0], NASTY[2], NASTY[4]], ids=["quotes", "unicode", "pem"])
def test_cli_output_never_shows_the_secret(
    mlops: Callable[..., CliResult], write_spec: Callable[..., Path], secret: str
) -> None:
    spec = write_spec(SPEC)
    for args in (["-v"], ["--json"], ["--events", "-"]):
        r = mlops("run", str(spec), *args, env={"TOK": secret})
        assert r.code == 1, r  # the step `bad` fails on purpose, with the secret in its error
        assert "failed with" in r.stdout + r.stderr, r
        assert_no_secret_in_text(r.stdout + r.stderr, secret, f"mlops run {' '.join(args)}")
