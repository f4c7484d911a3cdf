"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd): STARTTLS required, with a throwaway self-signed
certificate (made by the `openssl` binary), and LOGIN/PLAIN authentication with one user."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.api.conftest import free_port

USER = "mlops-mailer"
PASSWORD = "smtp-Pa55word-0f-the-relay"


class Inbox:
    """Keeps every message the server accepted, with its envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope, message))
        return "250 Message accepted for delivery"

    def wait(self, count: int, timeout: float = 30.0) -> list[tuple[Envelope, EmailMessage]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= count, self.messages
        return self.messages


class SmtpServer:
    """aiosmtpd on a free loopback port; `env` is what a gateway needs to send through it."""

    def __init__(self, folder: Path) -> None:
        self.cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
             "-out", str(self.cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
        )
        self.controller.start()

    def _authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if ok:
            self.inbox.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    @property
    def env(self) -> dict[str, str]:
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_USER": USER,
            "SMTP_PASSWORD": PASSWORD,
            "SMTP_FROM": "mlops@example.org",
            "SMTP_STARTTLS": "true",
            "SMTP_CA_FILE": str(self.cert),
        }

    def stop(self) -> None:
        self.controller.stop()
