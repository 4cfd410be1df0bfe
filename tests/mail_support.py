"""Mail in the tests: waiting for the job queue to deliver an email (the `emails` record's
status), an aiosmtpd handler that keeps (or refuses) what it is sent, one that holds the
first delivery so that a test can kill the sender while an email is in flight, and reading
an email's links against README "Frontend routes that emails link to"."""
from __future__ import annotations

import asyncio
import html
import re
import threading
import time

import pytest


async def email_status(db, email_id, wanted: str, timeout: float = 20) -> dict:
    """Poll the `emails` record `email_id` until its status is `wanted`; returns it (fails
    after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        record = await db.emails.find_one({"_id": email_id})
        if record and record["status"] == wanted:
            return record
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)


class Inbox:
    """An aiosmtpd handler that keeps every accepted message, and refuses with 554 while
    `refuse` is set."""

    def __init__(self):
        self.messages = []
        self.refuse = False

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 Transaction failed"
        self.messages.append(envelope)
        return "250 Message accepted"


def plain_text(message) -> str:
    """The text/plain part of a received message (`email.message.Message`), decoded."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("the message has no text/plain part")


async def wait_email(db, to: str, category: str, count: int = 1, timeout: float = 20) -> dict:
    """The newest `emails` record of `category` to `to` once `count` of them are stored."""
    deadline = time.monotonic() + timeout
    query = {"to": to, "category": category}
    while await db.emails.count_documents(query) < count:
        assert time.monotonic() < deadline, f"no {category} email to {to}"
        await asyncio.sleep(0.02)
    return await db.emails.find_one(query, sort=[("_id", -1)])


def frontend_routes(readme: str) -> list[re.Pattern]:
    """The routes of README "Frontend routes that emails link to" as path patterns
    (``/model/{id}`` matches ``/model/abc``)."""
    section = readme.split("## Frontend routes that emails link to", 1)[1].split("\n## ", 1)[0]
    routes = re.findall(r"^\| `(/[^`]*)` \|", section, flags=re.M)
    assert routes, "README lists no frontend route"
    return [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(r)) + "$")
            for r in routes]


def links_of(record: dict) -> list[str]:
    """Every link of an `emails` record: the URLs of its text and the hrefs of its HTML."""
    text_links = re.findall(r"https?://[^\s\"'<>]+", record["text"] or "")
    html_links = [html.unescape(h) for h in re.findall(r'href="([^"]*)"', record["html"] or "")]
    return text_links + html_links
class HoldingInbox(Inbox):
    """An `Inbox` that holds the first delivery at its recipient: no answer to that RCPT
    until the client's connection is gone (aiosmtpd then cancels the handler), so that
    message never arrives. `held` (a threading.Event) is set when it is held;
    `wait_for_messages(n, timeout)` waits for n kept messages and returns them."""

    def __init__(self):
        super().__init__()
        self.held = threading.Event()
        self._arrived = threading.Condition()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.held.is_set():
            self.held.set()
            await asyncio.Event().wait()  # until the connection is lost
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        with self._arrived:
            self._arrived.notify_all()
        return reply

    def wait_for_messages(self, count: int, timeout: float) -> list:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                pytest.fail(f"{count} message(s) not received within {timeout:g} s "
                            f"({len(self.messages)} received)")
            return list(self.messages)
