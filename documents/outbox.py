"""Outgoing email: one `Mailer` interface, and the `emails` collection that records each send.

`SmtpMailer` sends through aiosmtplib when `SMTP_HOST` is set; `OutboxMailer` (embedded
default) writes the message to the log instead. Both record the email in `emails`
({to, subject, text, html, category, status, created_at}) for the admin email history.
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
                   category: str = "transactional") -> dict:
        """Send an email to `to`; returns the stored record (status "sent" or "failed")."""
        record = {"to": to, "subject": subject, "text": text, "html": html,
                  "category": category, "status": "sent", "created_at": utcnow()}
        try:
            await self._deliver(self._message(to, subject, text, html))
        except Exception as exc:  # noqa: BLE001 - a failed send is recorded, not raised
            log.warning("email to %s failed: %s", to, exc)
            record["status"], record["error"] = "failed", type(exc).__name__
        result = await self.db[COLLECTION].insert_one(record)
        record["_id"] = result.inserted_id
        return record

    async def _deliver(self, message: EmailMessage) -> None:
        raise NotImplementedError


class OutboxMailer(Mailer):
    """Embedded default: the email is written to the log (and recorded), not sent."""

    async def _deliver(self, message: EmailMessage) -> None:
        log.info("OUTBOX email to %s: %s\n%s", message["To"], message["Subject"],
                 message.get_body(("plain",)).get_content())


class SmtpMailer(Mailer):
    """Sends through SMTP_HOST:SMTP_PORT with aiosmtplib (STARTTLS and login when configured)."""

    async def _deliver(self, message: EmailMessage) -> None:
        import aiosmtplib

        s = self.settings
        await aiosmtplib.send(
            message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_user,
            password=s.smtp_password, start_tls=s.smtp_starttls if s.smtp_user else False,
            timeout=15)


def open_mailer(settings: Settings, db) -> Mailer:
    """SmtpMailer when SMTP_HOST is set, else OutboxMailer."""
    return SmtpMailer(settings, db) if settings.smtp_host else OutboxMailer(settings, db)
