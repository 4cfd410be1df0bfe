"""Support tickets over REST (seed 000 §6, seed 001 §9 and §13): users' routes, the staff
desk, status transitions (incl. racing ones), assignment, emails, notifications."""
import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, ADMIN_ID, BUYER, BUYER2, BUYER_ID, CREATOR_ID, MODERATOR, MODERATOR_ID

from documents import support, users
from documents.errors import Invalid, NotFound
from tests.mail_support import email_status

FIXTURE_TICKET = "657000000000000000000001"   # buyer's, active, high, Technical, moderator's
NEW_TICKET = {"subject": "Payment Issue", "category": "Payment", "priority": "high",
              "message": "My payment failed but money was deducted"}


async def open_ticket(api, token, **changes):
    reply = await api("POST", "/api/support/tickets", json={**NEW_TICKET, **changes}, token=token)
    assert reply.status == 201, reply.json
    return reply.json


# --------------------------------------------------------------------------- user side

@pytest.mark.gen_test
async def test_create_ticket_with_first_message(api, tokens, services):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token, attachments=["/files/attachments/a.png"])
    assert ticket["subject"] == "Payment Issue" and ticket["category"] == "Payment"
    assert ticket["priority"] == "high" and ticket["status"] == "pending"
    assert ticket["user_id"] == BUYER_ID and ticket["user"]["username"] == "buyer"
    assert ticket["message_count"] == 1 and ticket["resolved_at"] is None
    assert ticket["created_at"].endswith("Z")
    [first] = ticket["messages"]
    assert first["content"] == NEW_TICKET["message"] and first["sender_type"] == "user"
    assert first["attachments"] == [services.settings.public_url + "/files/attachments/a.png"]
    stored = await services.db.support_messages.count_documents(
        {"ticket_id": ObjectId(ticket["id"])})
    assert stored == 1


@pytest.mark.gen_test
async def test_priority_defaults_to_medium(api, tokens):
    body = {k: v for k, v in NEW_TICKET.items() if k != "priority"}
    reply = await api("POST", "/api/support/tickets", json=body, token=await tokens(BUYER))
    assert reply.status == 201 and reply.json["priority"] == "medium"


@pytest.mark.gen_test
async def test_list_own_tickets_paginated_and_filtered(api, tokens):
    buyer, other = await tokens(BUYER2), await tokens(BUYER)   # buyer2 has no seeded ticket
    for i in range(3):
        await open_ticket(api, buyer, subject=f"Question {i}")
    await open_ticket(api, other, subject="Not yours")
    reply = await api("GET", "/api/support/tickets?limit=2", token=buyer)
    assert reply.status == 200
    assert reply.json["total"] == 3 and reply.json["pages"] == 2 and len(reply.json["items"]) == 2
    assert reply.json["items"][0]["subject"] == "Question 2"   # latest activity first
    page2 = await api("GET", "/api/support/tickets?limit=2&page=2", token=buyer)
    assert [t["subject"] for t in page2.json["items"]] == ["Question 0"]
    resolved = await api("GET", "/api/support/tickets?status=resolved", token=buyer)
    assert resolved.json["total"] == 0


@pytest.mark.gen_test
async def test_get_ticket_with_messages_oldest_first(api, tokens):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token)
    for text in ("second", "third"):
        reply = await api("POST", f"/api/support/tickets/{ticket['id']}/messages",
                          json={"content": text}, token=token)
        assert reply.status == 201 and reply.json["content"] == text
    reply = await api("GET", f"/api/support/tickets/{ticket['id']}", token=token)
    assert reply.status == 200
    assert [m["content"] for m in reply.json["messages"]] == [
        NEW_TICKET["message"], "second", "third"]
    assert reply.json["message_count"] == 3
    assert reply.json["messages"][1]["sender"]["username"] == "buyer"


@pytest.mark.gen_test
async def test_other_users_ticket_is_404_and_staff_can_see_it(api, tokens):
    ticket = await open_ticket(api, await tokens(BUYER))
    other = await tokens(BUYER2)
    path = f"/api/support/tickets/{ticket['id']}"
    assert (await api("GET", path, token=other)).status == 404
    reply = await api("POST", f"{path}/messages", json={"content": "hi"}, token=other)
    assert reply.status == 404 and reply.json["reason"] == "TICKET_NOT_FOUND"
    staff_view = await api("GET", path, token=await tokens(MODERATOR))
    assert staff_view.status == 200 and staff_view.json["user"]["email"] == BUYER


@pytest.mark.gen_test
async def test_routes_require_a_token(api):
    some = str(ObjectId())
    for method, path in [("GET", "/api/support/tickets"), ("POST", "/api/support/tickets"),
                         ("GET", f"/api/support/tickets/{some}"),
                         ("POST", f"/api/support/tickets/{some}/messages"),
                         ("PUT", f"/api/support/tickets/{some}/status"),
                         ("GET", "/api/admin/support/tickets"),
                         ("POST", f"/api/admin/support/tickets/{some}/email")]:
        reply = await api(method, path, json={} if method != "GET" else None)
        assert reply.status == 401, (method, path)
        assert reply.json["error_code"] == "UNAUTHORIZED"


@pytest.mark.gen_test
async def test_invalid_and_unknown_ticket_ids_are_404(api, tokens):
    token = await tokens(BUYER)
    for ref in ("nope", "1234", str(ObjectId())):
        assert (await api("GET", f"/api/support/tickets/{ref}", token=token)).status == 404
        staff_reply = await api("PUT", f"/api/admin/support/tickets/{ref}/status",
                                json={"status": "active"}, token=await tokens(ADMIN))
        assert staff_reply.status == 404


@pytest.mark.gen_test
@pytest.mark.parametrize("body, field", [
    ({**NEW_TICKET, "category": "Shipping"}, "category"),
    ({**NEW_TICKET, "priority": "urgent"}, "priority"),
    ({**NEW_TICKET, "message": "   "}, "message"),
    ({**NEW_TICKET, "message": "x" * 5001}, "message"),
    ({**NEW_TICKET, "subject": ""}, "subject"),
    ({**NEW_TICKET, "subject": 42}, "subject"),
    ({**NEW_TICKET, "status": "resolved"}, "status"),
    ({k: v for k, v in NEW_TICKET.items() if k != "message"}, "message"),
    ({**NEW_TICKET, "attachments": ["https://evil.example.com/x.png"]}, "attachments"),
    ({**NEW_TICKET, "attachments": ["/files/a.png"] * 6}, "attachments"),
    ({**NEW_TICKET, "attachments": "/files/a.png"}, "attachments"),
])
async def test_create_ticket_rejects_bad_input(api, tokens, services, body, field):
    db = services.db
    before = (await db.support_tickets.count_documents({}),
              await db.support_messages.count_documents({}))
    reply = await api("POST", "/api/support/tickets", json=body, token=await tokens(BUYER))
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR" and field in reply.json["field_errors"]
    after = (await db.support_tickets.count_documents({}),
             await db.support_messages.count_documents({}))
    assert after == before


@pytest.mark.gen_test
async def test_malformed_json_is_400(api, tokens):
    reply = await api("POST", "/api/support/tickets", body=b"{not json",
                      headers={"Content-Type": "application/json"}, token=await tokens(BUYER))
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{"content": ""}, {"content": " \n "}, {"content": "x" * 5001},
                                  {"content": None}, {"content": "ok", "extra": 1}, {},
                                  {"content": "ok", "attachments": ["javascript:alert(1)"]},
                                  {"content": "ok", "attachments": ["/files/../etc/passwd"]}])
async def test_message_rejects_bad_input(api, tokens, body):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token)
    reply = await api("POST", f"/api/support/tickets/{ticket['id']}/messages", json=body,
                      token=token)
    assert reply.status == 422, reply.json
    detail = await api("GET", f"/api/support/tickets/{ticket['id']}", token=token)
    assert detail.json["message_count"] == 1


@pytest.mark.gen_test
async def test_absolute_urls_of_our_storage_are_accepted(api, tokens, services):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token)
    url = f"{services.settings.public_url}/files/attachments/b.pdf"
    reply = await api("POST", f"/api/support/tickets/{ticket['id']}/messages",
                      json={"content": "see file", "attachments": [url]}, token=token)
    assert reply.status == 201 and reply.json["attachments"] == [url]


@pytest.mark.gen_test
async def test_user_side_status_and_assign_are_staff_only(api, tokens):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token)
    path = f"/api/support/tickets/{ticket['id']}"
    denied = await api("PUT", f"{path}/status", json={"status": "resolved"}, token=token)
    assert denied.status == 403 and denied.json["error_code"] == "FORBIDDEN"
    denied = await api("PUT", f"{path}/assign", json={"assigned_to": "Me"}, token=token)
    assert denied.status == 403
    staff = await tokens(MODERATOR)
    ok = await api("PUT", f"{path}/status", json={"status": "active"}, token=staff)
    assert ok.status == 200 and ok.json["status"] == "active"
    ok = await api("PUT", f"{path}/assign", json={"assigned_to": "Support Team"}, token=staff)
    assert ok.status == 200 and ok.json["assigned_to"] == "Support Team"


# --------------------------------------------------------------------------- staff desk

@pytest.mark.gen_test
async def test_staff_list_with_filters(api, tokens):
    buyer, buyer2, admin = await tokens(BUYER), await tokens(BUYER2), await tokens(ADMIN)
    a = await open_ticket(api, buyer, subject="Refund please", category="Refund", priority="low")
    b = await open_ticket(api, buyer2, subject="Cannot log in", category="Account")
    c = await open_ticket(api, buyer, subject="Viewer crashes", category="Technical")
    await api("PUT", f"/api/admin/support/tickets/{b['id']}/status", json={"status": "active"},
              token=admin)
    await api("PUT", f"/api/admin/support/tickets/{c['id']}/assign",
              json={"assigned_to": "Tech Team", "assignee_id": ADMIN_ID}, token=admin)

    async def ids(qs):
        reply = await api("GET", f"/api/admin/support/tickets?{qs}", token=admin)
        assert reply.status == 200, reply.json
        return {t["id"] for t in reply.json["items"]}, reply.json

    everything, body = await ids("")
    assert everything == {a["id"], b["id"], c["id"], FIXTURE_TICKET}
    assert body["status_counts"] == {"pending": 2, "active": 2, "resolved": 0}
    assert body["items"][0]["user"]["email"] in (BUYER, BUYER2)
    assert (await ids("status=active"))[0] == {b["id"], FIXTURE_TICKET}
    assert (await ids("priority=low"))[0] == {a["id"]}
    assert (await ids("category=Account"))[0] == {b["id"]}
    assert (await ids("search=refund"))[0] == {a["id"]}
    assert (await ids("assignee=me"))[0] == {c["id"]}
    assert (await ids(f"assignee={ADMIN_ID}"))[0] == {c["id"]}
    assert (await ids("assignee=tech%20team"))[0] == {c["id"]}
    assert (await ids("assignee=unassigned"))[0] == {a["id"], b["id"]}
    assert (await ids(f"assignee={MODERATOR_ID}"))[0] == {FIXTURE_TICKET}
    assert (await ids("assignee=SUPPORT%20TEAM"))[0] == {FIXTURE_TICKET}
    assert (await ids("limit=1"))[1]["pages"] == 4


@pytest.mark.gen_test
@pytest.mark.parametrize("qs", ["status=open", "priority=urgent", "category=Food", "limit=0",
                                "limit=x", "page=0", "search=" + "x" * 101])
async def test_staff_list_rejects_bad_filters(api, tokens, qs):
    reply = await api("GET", f"/api/admin/support/tickets?{qs}", token=await tokens(ADMIN))
    assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR"


@pytest.mark.gen_test
async def test_staff_routes_refuse_non_staff(api, tokens):
    token = await tokens(BUYER)
    ticket = await open_ticket(api, token)
    base = f"/api/admin/support/tickets/{ticket['id']}"
    for method, path, body in [("GET", "/api/admin/support/tickets", None), ("GET", base, None),
                               ("POST", f"{base}/messages", {"content": "x"}),
                               ("PUT", f"{base}/status", {"status": "active"}),
                               ("PUT", f"{base}/assign", {"assigned_to": "x"}),
                               ("POST", f"{base}/email", {"subject": "s", "message": "m"})]:
        reply = await api(method, path, json=body, token=token)
        assert reply.status == 403, (method, path)


@pytest.mark.gen_test
async def test_staff_reply_activates_ticket_and_notifies_owner(api, tokens):
    buyer, staff = await tokens(BUYER), await tokens(MODERATOR)
    ticket = await open_ticket(api, buyer)
    reply = await api("POST", f"/api/admin/support/tickets/{ticket['id']}/messages",
                      json={"content": "  We are on it.  "}, token=staff)
    assert reply.status == 201
    assert reply.json["sender_type"] == "admin" and reply.json["content"] == "We are on it."
    assert reply.json["sender_id"] == MODERATOR_ID
    detail = await api("GET", f"/api/admin/support/tickets/{ticket['id']}", token=staff)
    assert detail.json["status"] == "active" and detail.json["message_count"] == 2
    assert detail.json["messages"][-1]["sender_type"] == "admin"
    inbox = await api("GET", "/api/notifications", token=buyer)
    [note] = inbox.json["notifications"]
    assert note["type"] == "ticket_reply" and note["data"] == {"ticket_id": ticket["id"]}
    assert "We are on it." in note["message"] and inbox.json["unread_count"] == 1
    staff_inbox = await api("GET", "/api/notifications", token=staff)
    assert staff_inbox.json["total"] == 0


@pytest.mark.gen_test
async def test_owner_reply_reopens_resolved_ticket_without_notifying(api, tokens):
    buyer, staff = await tokens(BUYER), await tokens(ADMIN)
    ticket = await open_ticket(api, buyer)
    path = f"/api/admin/support/tickets/{ticket['id']}/status"
    await api("PUT", path, json={"status": "active"}, token=staff)
    await api("PUT", path, json={"status": "resolved"}, token=staff)
    await api("POST", f"/api/support/tickets/{ticket['id']}/messages",
              json={"content": "Still broken"}, token=buyer)
    detail = await api("GET", f"/api/support/tickets/{ticket['id']}", token=buyer)
    assert detail.json["status"] == "active" and detail.json["resolved_at"] is None
    assert (await api("GET", "/api/notifications", token=buyer)).json["total"] == 0


# --------------------------------------------------------------------------- status machine

@pytest.mark.gen_test
async def test_status_transitions(api, tokens, services):
    staff = await tokens(ADMIN)
    ticket = await open_ticket(api, await tokens(BUYER))
    path = f"/api/admin/support/tickets/{ticket['id']}/status"

    async def move(status):
        return await api("PUT", path, json={"status": status}, token=staff)

    bad = await move("resolved")   # pending → resolved skips active
    assert bad.status == 409 and bad.json["error_code"] == "INVALID_STATUS_TRANSITION"
    assert (await move("active")).json["status"] == "active"
    same = await move("active")                   # the status it already has: nothing moves
    assert same.status == 200 and same.json["status"] == "active"
    assert (await move("pending")).status == 409
    resolved = await move("resolved")
    assert resolved.status == 200 and resolved.json["resolved_at"].endswith("Z")
    stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket["id"])})
    assert stored["status"] == "resolved" and stored["resolved_at"] is not None
    reopened = await move("active")
    assert reopened.json["status"] == "active" and reopened.json["resolved_at"] is None


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{"status": "closed"}, {"status": None}, {}, [],
                                  {"status": "active", "note": "x"}])
async def test_status_rejects_bad_input(api, tokens, body):
    ticket = await open_ticket(api, await tokens(BUYER))
    reply = await api("PUT", f"/api/admin/support/tickets/{ticket['id']}/status", json=body,
                      token=await tokens(ADMIN))
    assert reply.status == 422


@pytest.mark.gen_test
async def test_racing_status_updates_exactly_one_wins(api, tokens, services):
    staff_a, staff_b = await tokens(ADMIN), await tokens(MODERATOR)
    ticket = await open_ticket(api, await tokens(BUYER))
    path = f"/api/admin/support/tickets/{ticket['id']}/status"
    replies = await asyncio.gather(
        *[api("PUT", path, json={"status": "active"}, token=t)
          for t in (staff_a, staff_b, staff_a, staff_b)])
    assert [r.status for r in replies] == [200] * 4      # whoever comes second finds it done
    stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket["id"])})
    assert stored["status"] == "active"


# --------------------------------------------------------------------------- assign, email

@pytest.mark.gen_test
async def test_assign_team_and_staff_member(api, tokens, services):
    staff = await tokens(ADMIN)
    ticket = await open_ticket(api, await tokens(BUYER))
    path = f"/api/admin/support/tickets/{ticket['id']}/assign"
    reply = await api("PUT", path, json={"assigned_to": "Support Team",
                                         "assignee_id": MODERATOR_ID}, token=staff)
    assert reply.status == 200
    assert reply.json["assigned_to"] == "Support Team"
    assert reply.json["assignee_id"] == MODERATOR_ID
    reply = await api("PUT", path, json={"assignee_id": None}, token=staff)
    assert reply.json["assignee_id"] is None and reply.json["assigned_to"] == "Support Team"
    stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket["id"])})
    assert stored["assignee_id"] is None


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{}, {"assignee_id": CREATOR_ID}, {"assignee_id": "nope"},
                                  {"assigned_to": "x" * 101}, {"assigned_to": 3},
                                  {"assigned_to": "A", "who": "B"}])
async def test_assign_rejects_bad_input(api, tokens, body):
    ticket = await open_ticket(api, await tokens(BUYER))
    reply = await api("PUT", f"/api/admin/support/tickets/{ticket['id']}/assign", json=body,
                      token=await tokens(ADMIN))
    assert reply.status == 422, reply.json


@pytest.mark.gen_test
async def test_email_user_reaches_the_outbox(api, tokens, services):
    ticket = await open_ticket(api, await tokens(BUYER))
    reply = await api("POST", f"/api/admin/support/tickets/{ticket['id']}/email",
                      json={"subject": "About your payment", "message": "Refund issued."},
                      token=await tokens(ADMIN))
    assert reply.status == 200, reply.json
    assert reply.json["to"] == BUYER and reply.json["status"] == "queued"
    assert reply.json["ticket_id"] == ticket["id"] and reply.json["sent_by"] == ADMIN_ID
    stored = await email_status(services.db, ObjectId(reply.json["id"]), "sent")
    assert stored["subject"] == "About your payment" and stored["text"].startswith("Refund issued.\n")
    assert stored["category"] == "support"


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [{"subject": "", "message": "m"}, {"subject": "s"},
                                  {"subject": "s", "message": "m", "cc": "x"}])
async def test_email_rejects_bad_input(api, tokens, services, body):
    ticket = await open_ticket(api, await tokens(BUYER))
    reply = await api("POST", f"/api/admin/support/tickets/{ticket['id']}/email", json=body,
                      token=await tokens(ADMIN))
    assert reply.status == 422
    assert await services.db.emails.count_documents({}) == 0


@pytest.mark.gen_test
async def test_seeded_ticket_reads_back_with_its_messages(api, tokens):
    reply = await api("GET", f"/api/support/tickets/{FIXTURE_TICKET}", token=await tokens(BUYER))
    assert reply.status == 200 and reply.json["status"] == "active"
    times = [m["created_at"] for m in reply.json["messages"]]
    assert len(times) == reply.json["message_count"] == 3 and times == sorted(times)


class RecordingHub:
    """A hub handed to `documents.support` directly: keeps what was published, in order."""

    def __init__(self):
        self.events = []

    async def publish(self, channel, type, data):
        self.events.append((channel, type, data))
        return {"type": type, "channel": channel, "data": data}


@pytest.mark.gen_test
async def test_staff_reply_publishes_message_status_and_notification(services):
    hub, db = RecordingHub(), services.db
    owner, staff_user = await users.get(db, BUYER_ID), await users.get(db, MODERATOR_ID)
    ticket, _ = await support.create_ticket(db, hub, owner, subject="Help", category="Other",
                                            message="Hello")
    hub.events.clear()
    message = await support.add_message(db, hub, ticket, staff_user, "On it", [])
    channel = f"support:{ticket['_id']}"
    assert [(c, t) for c, t, _ in hub.events] == [
        (channel, "message_received"), (channel, "ticket_status_changed"),
        (f"notifications:{BUYER_ID}", "ticket_reply")]
    assert hub.events[0][2] == message
    assert hub.events[1][2] == {"ticket_id": str(ticket["_id"]), "status": "active",
                                "previous_status": "pending"}
    hub.events.clear()
    resolved = await support.set_status(db, hub, await support.get_ticket(db, ticket["_id"]),
                                        "resolved")
    assert hub.events == [(channel, "ticket_status_changed",
                           {"ticket_id": str(ticket["_id"]), "status": "resolved",
                            "previous_status": "active"})]
    assert resolved["resolved_at"] is not None


@pytest.mark.gen_test
async def test_add_message_checks_access_and_input(services):
    hub, db = RecordingHub(), services.db
    ticket = await support.get_ticket(db, FIXTURE_TICKET)
    stranger = await users.get(db, CREATOR_ID)
    with pytest.raises(NotFound):
        await support.add_message(db, hub, ticket, stranger, "hi", [])
    owner = await users.get(db, BUYER_ID)
    for content, attachments in [("", []), ("x" * 5001, []), ("ok", ["/files/a"] * 6),
                                 ("ok", ["https://elsewhere.test/files/a.png"])]:
        with pytest.raises(Invalid):
            await support.add_message(db, hub, ticket, owner, content, attachments,
                                      settings=services.settings)
    assert hub.events == []
    assert await support.get_ticket(db, FIXTURE_TICKET) == ticket
