"""The staff "Email user" action of a ticket goes out through a real SMTP server (aiosmtpd)."""
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from bson import ObjectId
from conftest import free_port
from demo_accounts import ADMIN, BUYER

from tests.mail_support import Inbox, email_status, plain_text


@pytest.fixture
def smtp_inbox():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def settings_overrides(smtp_inbox):
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp_inbox[1], "smtp_starttls": False}


@pytest.mark.gen_test
async def test_email_user_is_delivered_over_smtp(api, tokens, services, smtp_inbox):
    inbox, _ = smtp_inbox
    ticket = await api("POST", "/api/support/tickets", token=await tokens(BUYER),
                       json={"subject": "Refund", "category": "Refund",
                             "message": "Please refund order 42"})
    reply = await api("POST", f"/api/admin/support/tickets/{ticket.json['id']}/email",
                      json={"subject": "Your refund", "message": "It is on its way."},
                      token=await tokens(ADMIN))
    assert reply.status == 200 and reply.json["status"] == "queued"
    await email_status(services.db, ObjectId(reply.json["id"]), "sent")
    [envelope] = inbox.messages
    assert envelope.rcpt_tos == [BUYER]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "Your refund" and mail["From"] == services.settings.smtp_from
    assert "It is on its way." in plain_text(mail)
    assert await services.db.emails.count_documents({"status": "sent"}) == 1


@pytest.mark.gen_test
async def test_refused_email_is_recorded_failed_without_retry(api, tokens, services, smtp_inbox):
    inbox, _ = smtp_inbox
    inbox.refuse = True
    ticket = await api("POST", "/api/support/tickets", token=await tokens(BUYER),
                       json={"subject": "Refund", "category": "Refund", "message": "Hi"})
    reply = await api("POST", f"/api/admin/support/tickets/{ticket.json['id']}/email",
                      json={"subject": "s", "message": "m"}, token=await tokens(ADMIN))
    assert reply.status == 200 and reply.json["status"] == "queued"
    stored = await email_status(services.db, ObjectId(reply.json["id"]), "failed")
    assert stored["attempts"] == 1 and stored["error"] == "SMTPDataError"  # 554: for good
    assert str(stored["ticket_id"]) == ticket.json["id"] and inbox.messages == []
