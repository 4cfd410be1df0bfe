"""Mail transports (docs/architecture.md §2): how `documents.outbox.Mailer` hands a message
to the outside. `open_transport(settings)`: `SmtpTransport` when `SMTP_HOST` is set, else
`LogTransport` (embedded default).

A transport has `session()` — an async context manager yielding ``async send(message)``
over one connection (a bulk batch uses one session) — `refused_for_good(exc)` (a refusal of
this one message that no retry changes), and `keeps_secrets` (True when the email text is
the only place a reader finds it, as with the log).
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from email.message import EmailMessage

import aiosmtplib

from config import Settings

log = logging.getLogger("hwc3d.mail")


class LogTransport:
    """Embedded default: each email is written to the log, not sent."""

    keeps_secrets = True

    @asynccontextmanager
    async def session(self):
        async def write(message: EmailMessage) -> None:
            log.info("OUTBOX email to %s: %s\n%s", message["To"], message["Subject"],
                     message.get_body(("plain",)).get_content())
        yield write

    def refused_for_good(self, exc: Exception) -> bool:
        return False


class SmtpTransport:
    """SMTP_HOST:SMTP_PORT with aiosmtplib. Port 465 uses implicit TLS; otherwise STARTTLS
    is required when SMTP_STARTTLS is true (the default) and not used when false.
    SMTP_USER/SMTP_PASSWORD log in when set."""

    keeps_secrets = False

    def __init__(self, settings: Settings):
        self.settings = settings

    @asynccontextmanager
    async def session(self):
        s = self.settings
        implicit_tls = s.smtp_port == 465
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_user,
            password=s.smtp_password, use_tls=implicit_tls,
            start_tls=False if implicit_tls else s.smtp_starttls, timeout=15)
        async with client:
            async def send(message: EmailMessage) -> None:
                errors, _ = await client.send_message(message)
                if errors:
                    raise aiosmtplib.SMTPRecipientsRefused(
                        [aiosmtplib.SMTPRecipientRefused(code, text, rcpt)
                         for rcpt, (code, text) in errors.items()])
            yield send

    def refused_for_good(self, exc: Exception) -> bool:
        """SMTP 5xx for the recipients or the data of this message."""
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            return all(500 <= r.code < 600 for r in exc.recipients)
        return isinstance(exc, (aiosmtplib.SMTPDataError, aiosmtplib.SMTPRecipientRefused)) \
            and 500 <= exc.code < 600


def open_transport(settings: Settings):
    """SmtpTransport when SMTP_HOST is set, else LogTransport."""
    return SmtpTransport(settings) if settings.smtp_host else LogTransport()
