"""What a notification says: a run's end or an alert, from the webhook body the queue holds, as a
Slack-compatible message (`text` + `blocks`; Mattermost and Rocket.Chat take the same) or as an e-mail.

Every value comes from a run or an alert, so from users: Slack control characters (`<`, `>`, `&`) are
escaped, e-mail header values lose their line breaks (a pipeline name cannot add a header), and long
texts are cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_DETAILS = 1500
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
_EMOJI = {"succeeded": ":white_check_mark:", "failed": ":x:", "cancelled": ":no_entry_sign:"}


@dataclass(frozen=True, slots=True)
class Summary:
    """One notification in words: a title, lines of facts, and a link to the run in the UI (if any)."""

    title: str
    status: str
    facts: list[tuple[str, str]]
    details: str | None
    link: str | None


def one_line(value: object, limit: int = 200) -> str:
    """`value` as one line (line breaks and header-splitting characters become spaces), cut to `limit`."""
    return _LINE_BREAKS.sub(" ", str(value)).strip()[:limit]


def duration(seconds: float) -> str:
    """`3.2s`, `4m 05s`, `2h 03m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def summarize(body: dict[str, Any], base_url: str) -> Summary:
    """A run ending (`run`) or an alert (`alert`) of a webhook body, in words."""
    if "alert" in body:
        alert = body["alert"]
        labels = alert.get("labels") or {}
        notes = alert.get("annotations") or {}
        name = one_line(labels.get("alertname", "alert"))
        status = one_line(alert.get("status", "firing"), 20)
        facts = [(one_line(k, 60), one_line(v)) for k, v in sorted(labels.items())][:20]
        text = notes.get("description") or notes.get("summary")
        return Summary(f"alert {name} {status}", status, facts, _cut(text), None)
    run = body["run"]
    status = one_line(run.get("status", ""), 20)
    facts = [
        ("pipeline", one_line(run.get("pipeline", ""))),
        ("status", status),
        ("run", one_line(run["id"])),
    ]
    started, finished = run.get("started_at"), run.get("finished_at")
    if isinstance(started, int | float) and isinstance(finished, int | float):
        facts.append(("duration", duration(max(0.0, finished - started))))
    link = f"{base_url.rstrip('/')}/runs/{run['id']}"
    title = f"{one_line(run.get('pipeline', ''))} {status}"
    return Summary(title, status, facts, _cut(run.get("details")), link)


def _cut(text: object) -> str | None:
    if not text:
        return None
    text = str(text)
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 1] + "…"


def slack_escape(text: str) -> str:
    """Text safe inside Slack mrkdwn (no links, mentions or markup injected by `<...>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(summary: Summary) -> dict[str, Any]:
    """The Slack incoming-webhook payload: `text` (notifications, clients without blocks) and `blocks`."""
    emoji = _EMOJI.get(summary.status, ":bell:")
    headline = f"{emoji} *{slack_escape(summary.title)}*"
    if summary.link:
        headline += f" (<{summary.link}|open the run>)"
    facts = [{"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(v)}"} for k, v in summary.facts]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    for i in range(0, len(facts), 10):  # Slack takes at most 10 fields per section
        blocks.append({"type": "section", "fields": facts[i : i + 10]})
    if summary.details:
        code = slack_escape(summary.details).replace("```", "'''")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{code}```"[:3000]}})
    text = f"{summary.title}" + (f": {summary.link}" if summary.link else "")
    return {"text": text, "blocks": blocks}


def mail_text(summary: Summary) -> str:
    """The plain-text body of the notification mail."""
    width = max(len(k) for k, _ in summary.facts) if summary.facts else 0
    lines = [summary.title, ""]
    lines += [f"{k.ljust(width)}  {v}" for k, v in summary.facts]
    if summary.link:
        lines += ["", f"Open the run: {summary.link}"]
    if summary.details:
        lines += ["", "Details:", summary.details]
    lines += ["", "-- ", "MLOps No-Code Platform"]
    return "\n".join(lines) + "\n"
