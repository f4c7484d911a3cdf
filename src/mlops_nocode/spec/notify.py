"""Notification targets of a run's end: a pipeline's defaults (`spec.notify`) and a launch's own list.

`webhook` and `n8n` get the signed JSON body of the gateway's webhooks, `slack` a Slack-compatible
incoming-webhook message (Mattermost and Rocket.Chat accept the same), `email` a mail over SMTP. Only the
form is checked here (URL shape, e-mail addresses, events); the gateway applies its host policy and its
SMTP configuration at launch.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops_nocode.spec.values import SpecValueError

NotifyType = Literal["webhook", "slack", "email", "n8n"]
NotifyEvent = Literal["run.succeeded", "run.failed", "run.cancelled"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("run.succeeded", "run.failed", "run.cancelled")
URL_TYPES = ("webhook", "slack", "n8n")
MAX_TARGETS = 20
MAX_RECIPIENTS = 50
# no whitespace at all (so no CR/LF), no user:password@ in the authority
URL_RE = re.compile(r"https?://[^\s/?#@\\]+(?:[/?#][^\s\\]*)?")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS_RE = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
"""A plain address (`local@domain.tld`): no display name, no quoting, no comment, no CR/LF."""


def check_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL without whitespace or credentials."""
    if len(url) > 2000 or not URL_RE.fullmatch(url):
        raise SpecValueError(
            f"not a usable notification URL: {url[:80]!r}",
            "give an absolute http:// or https:// URL without spaces, line breaks or user:password@",
        )
    return url


def check_address(address: str) -> str:
    """`address` when it is a plain e-mail address."""
    if len(address) > 254 or not ADDRESS_RE.fullmatch(address):
        raise SpecValueError(
            f"not an e-mail address: {address[:80]!r}",
            "write a plain address such as ops@example.org (no name, no spaces, no line breaks)",
        )
    return address


class NotifyTarget(BaseModel):
    """Where to say that a run ended, and for which endings (default: all three)."""

    model_config = ConfigDict(extra="forbid")

    type: NotifyType = Field(description="webhook (signed JSON), slack, email (SMTP) or n8n (signed JSON)")
    url: str | None = Field(
        default=None, max_length=2000, description="webhook, slack, n8n: where to POST (http or https)"
    )
    to: list[str] = Field(
        default_factory=list, max_length=MAX_RECIPIENTS, description="email: the recipients"
    )
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS), min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("to")
    @classmethod
    def _to(cls, v: list[str]) -> list[str]:
        for i, address in enumerate(v):
            try:
                check_address(address)
            except SpecValueError as e:
                raise SpecValueError(f"to[{i}]: {e}", e.fix) from None
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _fields_of_type(self) -> NotifyTarget:
        if self.type == "email":
            if not self.to:
                raise SpecValueError(
                    "an email target needs `to`", "list the recipients: to: [ops@example.org]"
                )
            if self.url is not None:
                raise SpecValueError(
                    "an email target takes no `url`", "remove `url`; the gateway's SMTP_HOST sends"
                )
        else:
            if self.url is None:
                raise SpecValueError(f"a {self.type} target needs `url`", "give the URL to POST to")
            if self.to:
                raise SpecValueError(f"a {self.type} target takes no `to`", "remove `to` (only email has it)")
        return self
