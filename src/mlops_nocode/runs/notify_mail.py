"""E-mail notifications over SMTP (Python's smtplib): plain, STARTTLS (default) or TLS from the start.

The message is built with `email.message.EmailMessage` under the SMTP policy, which refuses a header value
holding a line break; values come through notify_format.one_line first, so a pipeline name with CR/LF
becomes one line of the Subject instead of failing the delivery. Recipients were checked as plain
addresses when the target was created (spec.notify.check_address).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid

from mlops_nocode.runs.notify_format import Summary, mail_text, one_line
from mlops_nocode.settings import Settings

MAX_ERROR = 500


def build_message(settings: Settings, to: list[str], summary: Summary) -> EmailMessage:
    """The notification mail from SMTP_FROM to `to`."""
    message = EmailMessage(policy=SMTP)
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = one_line(f"[mlops] {summary.title}", 250)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2])
    message["X-MLOPS-Status"] = one_line(summary.status, 20)
    message.set_content(mail_text(summary))
    return message


def send_mail(settings: Settings, to: list[str], summary: Summary) -> tuple[int | None, str | None, bool]:
    """Send one notification: (250, None, False) when the server accepted every recipient, else (code or
    None, the reason, whether trying again is pointless: a permanent 5xx answer, or some recipients got it
    already and a retry would send it to them twice). Never raises for a network or protocol failure."""
    if not settings.smtp_host:
        return None, "e-mail notifications are off: SMTP_HOST is not set", True
    message = build_message(settings, to, summary)
    context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    client: smtplib.SMTP
    try:
        if settings.smtp_ssl:
            client = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
        with client:
            if settings.smtp_starttls and not settings.smtp_ssl:
                client.starttls(context=context)
            if settings.smtp_user and settings.smtp_password is not None:
                client.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            refused = client.send_message(message, settings.smtp_from, to)
    except smtplib.SMTPResponseException as e:
        return e.smtp_code, f"SMTP {e.smtp_code}: {_text(e.smtp_error)}"[:MAX_ERROR], e.smtp_code >= 500
    except smtplib.SMTPRecipientsRefused as e:
        codes = {addr: code for addr, (code, _) in e.recipients.items()}
        return None, f"every recipient was refused: {codes}"[:MAX_ERROR], False
    except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
        return None, f"{type(e).__name__}: {e}"[:MAX_ERROR], False
    if refused:
        codes = {addr: code for addr, (code, _) in refused.items()}
        return None, f"sent, but the server refused some recipients: {codes}"[:MAX_ERROR], True
    return 250, None, False


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
