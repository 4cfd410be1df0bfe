"""Outgoing email: one `Mailer` interface, and the `emails` collection that is its outbox.

`send` (and `send_many` for bulk sends) records each email in `emails` ({to, subject, text,
html, headers, category, status, message_id, attempts, error?, redacted, created_at, sent_at}) with
status "queued" and hands its id to the job queue (`services.jobs`, jobs `deliver_email` /
`deliver_batch`), which delivers it with retries and backoff: status "queued" → "retrying"
(a try failed) → "sent", or "failed" after the last try (a dead letter, in the admin email
history under status=failed). Delivery is idempotent per email id: an email already "sent"
is never sent again, and its `Message-ID` header is derived from the id, so a receiving
server can drop the copy of a re-driven try. A bulk send goes out in batches of BATCH_SIZE
over one SMTP connection per batch. An email whose job was lost (the queue unreachable when
it was recorded, Redis data lost) stays "queued" with no try: after LOST_AFTER the periodic
`reclaim_stranded` job queues it again (`requeue_lost`).

The transport is handed in by the composition root (`providers.mail`): SMTP through
aiosmtplib when `SMTP_HOST` is set, else the log (embedded default).

An email that carries a secret (a password-reset link, a verification code) is sent with
`sensitive=True`: a mailer that really delivers (SMTP) then drops its text and HTML from the
record once delivered or failed (`redacted: true`), so that the history does not hold live
credentials. The outbox keeps them, since in the embedded mode the outbox is the only way to
read the email.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from email.message import EmailMessage

from bson import ObjectId
from pymongo import DESCENDING, IndexModel

from config import Settings
from documents.common import paginate, utcnow
from documents.emails import EmailRenderer

COLLECTION = "emails"
INDEXES = {COLLECTION: [IndexModel([("created_at", DESCENDING)]),
                        IndexModel([("to", 1), ("created_at", DESCENDING)]),
                        IndexModel([("status", 1), ("created_at", DESCENDING)])]}
OPEN = ("queued", "retrying")
BATCH_SIZE = 100
LOST_AFTER = timedelta(minutes=30)

log = logging.getLogger("hwc3d.mail")


async def email_history(db, *, page: int, limit: int, to: str | None = None,
                        status: str | None = None,
                        category: str | None = None) -> tuple[list[dict], dict]:
    """One page of the `emails` collection (every email the mailer recorded), newest first."""
    query: dict = {}
    if to:
        query["to"] = to.strip().lower()
    if status:
        query["status"] = status
    if category:
        query["category"] = category
    return await paginate(db[COLLECTION], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])


async def count_failed(db, since) -> int:
    """How many emails failed for good since `since` (a datetime)."""
    return await db[COLLECTION].count_documents({"status": "failed", "created_at": {"$gte": since}})


class Mailer:
    """Records emails and delivers them through `transport` (`providers.mail`: `session()`
    yields ``async send(message)`` over one connection; `refused_for_good(exc)`;
    `keeps_secrets`)."""

    def __init__(self, settings: Settings, db, transport, jobs=None):
        self.settings = settings
        self.db = db
        self.transport = transport
        self.keeps_secrets = transport.keeps_secrets
        self.jobs = jobs  # providers.jobs.JobQueue; None delivers within `send`
        self.renderer = EmailRenderer(settings)  # documents.emails: every kind, compiled once

    def _message(self, record: dict) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = record["to"]
        message["Subject"] = record["subject"]
        domain = self.settings.smtp_from.rpartition("@")[2] or "hwc3d.com"
        message["Message-ID"] = f"<{record['_id']}@{domain}>"
        for name, value in (record.get("headers") or {}).items():
            message[name] = value
        message.set_content(record["text"] or "")
        if record.get("html"):
            message.add_alternative(record["html"], subtype="html")
        return message

    def _record(self, to: str, subject: str, text: str, html: str | None, category: str,
                sensitive: bool, headers: dict | None = None) -> dict:
        return {"_id": ObjectId(), "to": to, "subject": subject, "text": text, "html": html,
                "headers": headers or None,
                "category": category, "status": "queued", "attempts": 0, "redacted": False,
                "redact_when_done": sensitive and not self.keeps_secrets,
                "created_at": utcnow(), "sent_at": None}

    async def send(self, to: str, subject: str, text: str, html: str | None = None,
                   category: str = "transactional", sensitive: bool = False,
                   headers: dict | None = None) -> dict:
        """Record an email to `to` and queue its delivery; returns the stored record
        (status "queued"). `headers` are extra message headers ({name: value}, e.g.
        List-Unsubscribe). Never raises for a mail server's failure (retried by the job).
        The product's emails come through `documents.emails.send`, which renders them."""
        record = self._record(to, subject, text, html, category, sensitive, headers)
        await self.db[COLLECTION].insert_one(record)
        if self.jobs is not None:
            await self._enqueue("deliver_email", f"email:{record['_id']}",
                                email_id=str(record["_id"]))
        else:
            try:
                await self.deliver([record["_id"]], last_try=True)
            except Exception as exc:
                log.warning("email to %s failed: %s", to, exc)
        return record

    async def tag(self, email_id, fields: dict) -> None:
        """Add `fields` (who sent it, what it is about: ``{ticket_id, sent_by}``) to the
        recorded email `email_id`; never changes its content or delivery state."""
        await self.db[COLLECTION].update_one({"_id": email_id}, {"$set": fields})

    async def send_many(self, emails: list[dict], category: str) -> list[dict]:
        """Record many emails (``[{to, subject, text, html?, headers?}]``) and queue them in
        batches of BATCH_SIZE, each batch delivered over one connection; returns the records."""
        records = [self._record(e["to"], e["subject"], e["text"], e.get("html"), category,
                                False, e.get("headers")) for e in emails]
        if not records:
            return []
        await self.db[COLLECTION].insert_many(records)
        for start in range(0, len(records), BATCH_SIZE):
            ids = [str(r["_id"]) for r in records[start:start + BATCH_SIZE]]
            if self.jobs is not None:
                await self._enqueue("deliver_batch", f"emails:{ids[0]}", email_ids=ids)
            else:
                await self.deliver([ObjectId(i) for i in ids], last_try=True)
        return records

    async def _enqueue(self, function: str, key: str, **kwargs) -> None:
        """Queue a delivery; when the queue cannot be reached (Redis away) the email stays
        "queued" and `requeue_lost` picks it up later."""
        try:
            await self.jobs.enqueue(function, key=key, **kwargs)
        except Exception:
            log.warning("could not queue %s (%s); it waits for the requeue sweep", key,
                        function, exc_info=True)

    async def requeue_lost(self, *, older_than: timedelta = LOST_AFTER) -> int:
        """Queue again the emails never tried for `older_than` (their job was lost: the
        queue was unreachable, or Redis lost its data); returns how many."""
        cutoff = utcnow() - older_than
        lost = await self.db[COLLECTION].find(
            {"status": "queued", "attempts": 0, "created_at": {"$lte": cutoff}},
            {"_id": 1}).to_list(length=10 * BATCH_SIZE)
        for record in lost:
            await self.jobs.enqueue("deliver_email", key=f"email:{record['_id']}",
                                    email_id=str(record["_id"]))
        return len(lost)

    async def deliver(self, email_ids: list, *, last_try: bool) -> int:
        """Deliver the emails `email_ids` still queued or retrying, over one connection;
        returns how many went out. An email the server refuses for good (5xx) is marked
        "failed" at once; a failure of the connection or a temporary refusal marks the rest
        "retrying" (or "failed" on the `last_try`) and raises, so that the job retries."""
        ids = [ObjectId(str(i)) for i in email_ids]
        records = await self.db[COLLECTION].find(
            {"_id": {"$in": ids}, "status": {"$in": list(OPEN)}}).to_list(length=len(ids))
        records.sort(key=lambda r: r["_id"])
        if not records:
            return 0
        sent = 0
        pending = list(records)
        try:
            async with self.transport.session() as send:
                while pending:
                    record = pending[0]
                    try:
                        await send(self._message(record))
                    except Exception as exc:
                        if not self.transport.refused_for_good(exc):
                            raise
                        await self._tried(record, exc, final=True)
                    else:
                        await self._done(record, "sent")
                        sent += 1
                    pending.pop(0)
        except Exception as exc:
            for record in pending:
                await self._tried(record, exc, final=last_try)
            raise
        return sent

    async def _done(self, record: dict, status: str, error: str | None = None) -> None:
        changes = {"status": status, "error": error}
        if status == "sent":
            changes["sent_at"] = utcnow()
        if record.get("redact_when_done"):
            changes.update(text=None, html=None, redacted=True)
        await self.db[COLLECTION].update_one({"_id": record["_id"]},
                                             {"$set": changes, "$inc": {"attempts": 1}})

    async def _tried(self, record: dict, exc: Exception, *, final: bool) -> None:
        error = type(exc).__name__
        log.warning("email %s to %s: try failed (%s: %s)%s", record["_id"], record["to"],
                    error, exc, "; giving up" if final else "")
        if final:
            await self._done(record, "failed", error)
        else:
            await self.db[COLLECTION].update_one(
                {"_id": record["_id"]}, {"$set": {"status": "retrying", "error": error},
                                         "$inc": {"attempts": 1}})
