"""What a notification says (Slack message, e-mail), that user values cannot inject headers or markup, and
the launch-time checks of notification targets (no gateway needed)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from mlops_nocode.compiler.plan import Plan
from mlops_nocode.hosts import HostPolicy
from mlops_nocode.runs.notify_format import duration, slack_message, summarize
from mlops_nocode.runs.notify_mail import build_message, send_mail
from mlops_nocode.runs.notify_targets import RunTargets
from mlops_nocode.settings import Settings
from mlops_nocode.spec import SpecError

RUN = {
    "id": "20261130-120000-ab12cd",
    "pipeline": "pipeline/iris@1.0.0",
    "status": "failed",
    "details": "step train failed: exit code 3",
    "started_at": 100.0,
    "finished_at": 345.0,
}


def test_the_summary_of_a_run_has_status_duration_link_and_details() -> None:
    s = summarize({"run": RUN}, "https://mlops.example.org/")
    assert s.title == "pipeline/iris@1.0.0 failed"
    assert ("duration", "4m 05s") in s.facts
    assert s.link == "https://mlops.example.org/runs/20261130-120000-ab12cd"
    assert s.details == "step train failed: exit code 3"
    assert duration(3.25) == "3.2s" and duration(7380) == "2h 03m"


def test_slack_markup_in_values_is_escaped() -> None:
    run = RUN | {"details": "<!channel> <https://evil.example|click> & more"}
    message = slack_message(summarize({"run": run}, "http://gw"))
    text = str(message["blocks"])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&amp; more" in text
    assert message["text"].startswith("pipeline/iris@1.0.0 failed")


def test_a_value_with_line_breaks_adds_no_header(tmp_path: Path) -> None:
    settings = Settings(mlops_home=tmp_path, smtp_host="127.0.0.1")
    alert = {
        "status": "firing",
        "labels": {"alertname": "Evil\r\nBcc: victim@example.org\r\nX-Injected: yes"},
        "annotations": {"summary": "x\r\n\r\nbody"},
    }
    message = build_message(settings, ["ops@example.org"], summarize({"alert": alert}, "http://gw"))
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert parsed["Subject"] == "[mlops] alert Evil Bcc: victim@example.org X-Injected: yes firing"
    assert parsed["To"] == "ops@example.org"


def test_without_smtp_host_mail_is_refused_for_good(tmp_path: Path) -> None:
    code, error, final = send_mail(
        Settings(mlops_home=tmp_path), ["a@example.org"], summarize({"run": RUN}, "")
    )
    assert code is None and final and error is not None and "SMTP_HOST" in error


def _plan(notify: tuple[dict[str, object], ...] = ()) -> Plan:
    return Plan(root="pipeline/p@1.0.0", parameters={}, steps=(), outputs={}, notify=notify)


def _targets(tmp_path: Path, **settings: object) -> RunTargets:
    config = Settings(mlops_home=tmp_path, **settings)  # type: ignore[arg-type]
    return RunTargets(vault=None, policy=HostPolicy(), settings=config)  # type: ignore[arg-type]


def test_email_targets_need_smtp_at_launch(tmp_path: Path) -> None:
    email_target = {"type": "email", "to": ["ops@example.org"], "events": ["run.failed"]}
    with pytest.raises(SpecError) as e:
        _targets(tmp_path).prepare(_plan((email_target,)), None)
    (problem,) = e.value.problems
    assert problem.where == "pipeline/p@1.0.0 > spec.notify[0].type" and "SMTP_HOST" in problem.what
    prepared = _targets(tmp_path, smtp_host="127.0.0.1").prepare(_plan((email_target,)), None)
    assert prepared is not None and prepared.shown_secret is None


def test_a_launch_list_replaces_the_pipelines(tmp_path: Path) -> None:
    refused = {"type": "webhook", "url": "http://169.254.169.254/", "events": ["run.failed"]}
    targets = _targets(tmp_path)
    assert targets.prepare(_plan((refused,)), []) is None  # [] silences the pipeline's (refused) target
    with pytest.raises(SpecError) as e:
        targets.prepare(_plan(), [refused])
    assert e.value.problems[0].where == "notify[0].url"
    signed = {"type": "n8n", "url": "http://127.0.0.1:9/x", "events": ["run.failed"], "secret": None}
    prepared = targets.prepare(_plan(), [signed])
    assert prepared is not None and prepared.shown_secret == prepared.run_secret


def test_the_plan_file_holds_no_target() -> None:
    """Runners get the plan's JSON: a Slack URL (a credential in its path) never goes there."""
    target = {"type": "slack", "url": "https://hooks.example.org/T0/B0/tok", "events": ["run.failed"]}
    assert "hooks.example.org" not in str(_plan((target,)).to_json())
