"""A run's own notification targets: the launch's `notify` list, or else its pipeline's `spec.notify`.

Checked at launch, before the run is queued (a located Problem for each: a URL the host policy refuses,
an e-mail target while SMTP_HOST is unset), then stored as rows of the `webhooks` table that name their
run (`run_id`), so that the durable webhook queue delivers them like registered webhooks: exactly once per
run, target and event, with retries, the delivery log and the host policy again at every attempt.

`webhook` and `n8n` targets are signed like registered webhooks, with the target's own `secret` or with a
secret made for the run, returned once in the launch's answer (`notify_secret`) and stored sealed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlops_nocode.compiler import Plan
from mlops_nocode.hosts import HostPolicy, HostRefused
from mlops_nocode.runs.models import WebhookRow
from mlops_nocode.runs.vault import SecretStore
from mlops_nocode.settings import Settings
from mlops_nocode.spec import Problem, SpecError
from mlops_nocode.spec.notify import NOTIFY_EVENTS, NotifyTarget

SIGNED = ("webhook", "n8n")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Targets checked for one launch, ready to be stored with its run."""

    targets: tuple[dict[str, Any], ...]
    run_secret: str

    @property
    def shown_secret(self) -> str | None:
        """The run's signing secret, when a signed target uses it (the launch answer shows it once)."""
        used = any(t["type"] in SIGNED and not t.get("secret") for t in self.targets)
        return self.run_secret if used else None

    def rows(self, run_id: str, vault: SecretStore) -> list[WebhookRow]:
        """One `webhooks` row per target, owned by the run."""
        now = time.time()
        return [
            WebhookRow(
                id=secrets.token_hex(8),
                url=t.get("url") or "",
                events=",".join(e for e in NOTIFY_EVENTS if e in t["events"]),
                secret=vault.seal(t.get("secret") or self.run_secret),
                created_at=now,
                kind=t["type"],
                recipients=",".join(t.get("to") or ()) or None,
                run_id=run_id,
            )
            for t in self.targets
        ]


class RunTargets:
    """Checks a launch's targets against the host policy and the SMTP settings."""

    def __init__(self, vault: SecretStore, policy: HostPolicy, settings: Settings) -> None:
        self.vault, self.policy, self.settings = vault, policy, settings

    def prepare(self, plan: Plan, given: list[dict[str, Any]] | None) -> Prepared | None:
        """The targets of a launch (`given`, else the plan's pipeline defaults); None when there are none.
        SpecError with every problem, located at `notify[i]...` or `<pipeline> > spec.notify[i]...`."""
        if given is not None:
            targets, prefix = given, "notify"
        else:
            targets, prefix = list(plan.notify), f"{plan.root} > spec.notify"
        if not targets:
            return None
        problems: list[Problem] = []
        for i, target in enumerate(targets):
            problems.extend(self.problems(target, f"{prefix}[{i}]"))
        if problems:
            raise SpecError(problems)
        return Prepared(tuple(targets), secrets.token_urlsafe(32))

    def problems(self, target: dict[str, Any], where: str) -> list[Problem]:
        """What stops this target from being delivered from this gateway."""
        try:
            NotifyTarget.model_validate({k: v for k, v in target.items() if k != "secret"})
        except ValidationError as e:  # a plan file edited by hand; launches were checked by their schema
            return [Problem(err["msg"], where, "see `mlops schema` (spec.notify)") for err in e.errors()]
        if target["type"] == "email":
            if not self.settings.smtp_host:
                return [
                    Problem(
                        "e-mail notifications are off on this gateway: SMTP_HOST is not set",
                        f"{where}.type",
                        "have SMTP_HOST (and SMTP_FROM...) set, or use a slack or webhook target",
                    )
                ]
            return []
        try:
            self.policy.check_url(str(target["url"]))
        except HostRefused as e:
            return [
                Problem(
                    f"notification URL refused: {e}",
                    f"{where}.url",
                    "use a host that WEBHOOK_ALLOWED_HOSTS allows (public, or named there)",
                )
            ]
        return []

    def rows(self, prepared: Prepared, run_id: str) -> list[WebhookRow]:
        """The rows to store with the run (secrets sealed with this gateway's key)."""
        return prepared.rows(run_id, self.vault)

    @staticmethod
    def copies(session: Session, from_run: str, to_run: str) -> list[WebhookRow]:
        """`from_run`'s targets for `to_run` (a retry): same URLs, recipients, events and sealed secrets,
        so receivers verify the retry's notifications with the secrets they already know."""
        owned = select(WebhookRow).where(WebhookRow.run_id == from_run).order_by(WebhookRow.created_at)
        rows = session.scalars(owned)
        now = time.time()
        return [
            WebhookRow(
                id=secrets.token_hex(8),
                url=r.url,
                events=r.events,
                secret=r.secret,
                created_at=now,
                kind=r.kind,
                recipients=r.recipients,
                run_id=to_run,
            )
            for r in rows
        ]
