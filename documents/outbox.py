"""Outgoing email: one `Mailer` interface, and the `emails` collection that records each send.

`SmtpMailer` sends through aiosmtplib when `SMTP_HOST` is set; `OutboxMailer` (embedded
default) writes the message to the log instead. Both record the email in `emails`
({to, subject, text, html, category, status, error?, redacted, created_at}) for the admin
email history.

An email that carries a secret (a password-reset link, a verification code) is sent with
`sensitive=True`: a mailer that really delivers (SMTP) then stores it with its text and HTML
left out (`redacted: true`), so that the history does not hold live credentials. The outbox
keeps them, since in the embedded mode the outbox is the only way to read the email.
"""
from __future__ import annotations

import logging
from email.message import EmailMessage

from pymongo import DESCENDING, IndexModel

from config import Settings
from documents.common import utcnow

COLLECTION = "emails"
INDEXES = {COLLECTION: [IndexModel([("created_at", DESCENDING)]),
                        IndexModel([("to", 1), ("created_at", DESCENDING)])]}

log = logging.getLogger("hwc3d.mail")


class Mailer:
    """Sends one email and records it; subclasses implement `_deliver`."""

    keeps_secrets = False

    def __init__(self, settings: Settings, db):
        self.settings = settings
        self.db = db

    def _message(self, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return message

    async def send(self, to: str, subject: str, text: str, html: str | None = None,
                   category: str = "transactional", sensitive: bool = False) -> dict:
        """Send an email to `to`; returns the stored record (status "sent" or "failed").

        Never raises: a failed delivery is logged and recorded with status "failed".
        """
        redact = sensitive and not self.keeps_secrets
        record = {"to": to, "subject": subject, "text": None if redact else text,
                  "html": None if redact else html, "category": category, "status": "sent",
                  "redacted": redact, "created_at": utcnow()}
        try:
            await self._deliver(self._message(to, subject, text, html))
        except Exception as exc:
            log.warning("email to %s failed: %s", to, exc)
            record["status"], record["error"] = "failed", type(exc).__name__
        result = await self.db[COLLECTION].insert_one(record)
        record["_id"] = result.inserted_id
        return record

    async def _deliver(self, message: EmailMessage) -> None:
        raise NotImplementedError


class OutboxMailer(Mailer):
    """Embedded default: the email is written to the log (and recorded), not sent."""

    keeps_secrets = True

    async def _deliver(self, message: EmailMessage) -> None:
        log.info("OUTBOX email to %s: %s\n%s", message["To"], message["Subject"],
                 message.get_body(("plain",)).get_content())


class SmtpMailer(Mailer):
    """Sends through SMTP_HOST:SMTP_PORT with aiosmtplib.

    Port 465 uses implicit TLS; otherwise STARTTLS is required when SMTP_STARTTLS is true
    (the default) and not used when false. SMTP_USER/SMTP_PASSWORD log in when set.
    """

    async def _deliver(self, message: EmailMessage) -> None:
        import aiosmtplib

        s = self.settings
        implicit_tls = s.smtp_port == 465
        await aiosmtplib.send(
            message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_user,
            password=s.smtp_password, use_tls=implicit_tls,
            start_tls=False if implicit_tls else s.smtp_starttls, timeout=15)


def open_mailer(settings: Settings, db) -> Mailer:
    """SmtpMailer when SMTP_HOST is set, else OutboxMailer."""
    return SmtpMailer(settings, db) if settings.smtp_host else OutboxMailer(settings, db)
