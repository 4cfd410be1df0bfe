"""Support tickets' read state.

- Per-ticket read state: each side of a ticket (owner, support staff) has an unread count,
  moved by every message of the other side and reset by ``PUT .../read`` (or a `read` frame
  on ``/ws/support/{id}``); reading a ticket also marks its `ticket_reply` notifications read.
"""
from __future__ import annotations

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, CREATOR
from socket_support import join, new_ticket, next_of, send, ws_url


async def ticket_of(api, token: str, ticket_id: str, *, staff: bool = False) -> dict:
    prefix = "/api/admin/support/tickets" if staff else "/api/support/tickets"
    reply = await api("GET", f"{prefix}/{ticket_id}", token=token)
    assert reply.status == 200, reply.json
    return reply.json


async def reply_to(api, token: str, ticket_id: str, content: str, *, staff: bool = False):
    prefix = "/api/admin/support/tickets" if staff else "/api/support/tickets"
    reply = await api("POST", f"{prefix}/{ticket_id}/messages", json={"content": content},
                      token=token)
    assert reply.status == 201, reply.json


@pytest.mark.gen_test
async def test_each_side_counts_unread_messages_until_it_reads(api, tokens, services):
    buyer, admin = await tokens(BUYER), await tokens(ADMIN)
    ticket = await new_ticket(api, buyer)
    # the first message waits for an agent; the owner has nothing unread
    assert (await ticket_of(api, buyer, ticket))["unread_count"] == 0
    assert (await ticket_of(api, admin, ticket, staff=True))["unread_count"] == 1
    listed = (await api("GET", "/api/admin/support/tickets", token=admin)).json["items"]
    assert {t["id"]: t["unread_count"] for t in listed}[ticket] == 1

    read = await api("PUT", f"/api/admin/support/tickets/{ticket}/read", token=admin)
    assert read.status == 200 and read.json["unread_count"] == 0
    await reply_to(api, admin, ticket, "Looking into it", staff=True)
    await reply_to(api, admin, ticket, "Fixed, please retry", staff=True)
    assert (await ticket_of(api, buyer, ticket))["unread_count"] == 2
    own = (await api("GET", "/api/support/tickets", token=buyer)).json["items"]
    assert {t["id"]: t["unread_count"] for t in own}[ticket] == 2
    assert (await ticket_of(api, admin, ticket, staff=True))["unread_count"] == 0

    # reading clears the owner's count and the ticket_reply notifications of this ticket only
    other = await new_ticket(api, buyer, "Another problem")
    await reply_to(api, admin, other, "On it", staff=True)
    notes = {"user_id": ObjectId("650000000000000000000005"), "type": "ticket_reply",
             "is_read": False}
    assert await services.db.notifications.count_documents(notes) == 3
    read = await api("PUT", f"/api/support/tickets/{ticket}/read", token=buyer)
    assert read.status == 200 and read.json["unread_count"] == 0
    assert read.json["id"] == ticket and read.json["status"] == "active"
    assert await services.db.notifications.count_documents(notes) == 1
    stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket)})
    assert stored["unread_by_user"] == 0 and stored["user_read_at"] is not None
    assert stored["message_count"] == 3
    unread = await api("GET", "/api/notifications?filter=unread", token=buyer)
    assert unread.json["unread_count"] == 1
    assert unread.json["items"][0]["data"]["ticket_id"] == other


@pytest.mark.gen_test
async def test_read_is_for_the_owner_and_support_staff_only(api, tokens, services):
    buyer = await tokens(BUYER)
    ticket = await new_ticket(api, buyer)
    for who in (BUYER2, CREATOR):
        reply = await api("PUT", f"/api/support/tickets/{ticket}/read", token=await tokens(who))
        assert reply.status == 404 and reply.json["reason"] == "TICKET_NOT_FOUND"
    staff_route = await api("PUT", f"/api/admin/support/tickets/{ticket}/read", token=buyer)
    assert staff_route.status == 403
    assert (await api("PUT", f"/api/support/tickets/{ticket}/read")).status == 401
    for junk in ("not-an-id", "000000000000000000000000"):
        reply = await api("PUT", f"/api/support/tickets/{junk}/read", token=buyer)
        assert reply.status == 404 and reply.json["reason"] == "TICKET_NOT_FOUND"
    # staff may mark it read through the user-side route too
    admin = await tokens(ADMIN)
    assert (await api("PUT", f"/api/support/tickets/{ticket}/read", token=admin)).status == 200
    stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket)})
    assert stored["unread_by_staff"] == 0 and stored["staff_read_at"] is not None


@pytest.mark.gen_test
async def test_read_frame_on_the_support_socket_marks_the_ticket_read(
        http_server, base_url, api, tokens, services):
    buyer, admin = await tokens(BUYER), await tokens(ADMIN)
    ticket = await new_ticket(api, buyer)
    await reply_to(api, admin, ticket, "Hello from support", staff=True)
    conn, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", buyer))
    try:
        await send(conn, {"type": "read", "ref": "r1"})
        ack = await next_of(conn, "ack")
        assert ack["data"]["ref"] == "r1" and ack["data"]["unread_count"] == 0
        stored = await services.db.support_tickets.find_one({"_id": ObjectId(ticket)})
        assert stored["unread_by_user"] == 0
    finally:
        conn.close()
