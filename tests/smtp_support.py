"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd): STARTTLS required, with a throwaway self-signed
certificate (made with `cryptography`), and LOGIN/PLAIN authentication with one user."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.api.conftest import free_port

USER = "mlops-mailer"
PASSWORD = "smtp-Pa55word-0f-the-relay"
LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _self_signed(cert: Path, key: Path) -> None:
    """A one-day certificate for 127.0.0.1 (its own CA: the gateway trusts it through SMTP_CA_FILE)."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


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
        _self_signed(self.cert, key)
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
