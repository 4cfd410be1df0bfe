"""WebSocket endpoints on one instance (embedded broker): auth and channel authorization
before any event, the three channels, client frames and bad frames, recovery with `since`,
presence, slow consumers and shutdown (docs/architecture.md §6).

Cross-instance delivery over a real Redis is in `test_realtime.py`, which reuses the helpers
below.
"""
from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, BUYER2_ID, BUYER_ID, MODERATOR
from socket_support import (
    connect,
    frame,
    join,
    new_community,
    new_ticket,
    next_of,
    refused,
    send,
    until,
    ws_url,
)
from tornado.httpclient import HTTPClientError

from config import RateLimit
from documents import communities, notifications, sessions

# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _served(http_server):
    """Every test here talks to the pytest-tornado server of `app` (`base_url`)."""
    return http_server


# --------------------------------------------------------------------------- auth

@pytest.mark.gen_test
async def test_missing_bad_expired_and_revoked_tokens_get_4401(services, base_url, api, tokens):
    ticket = await new_ticket(api, await tokens(BUYER))
    path = f"/ws/support/{ticket}"
    assert (await refused(ws_url(base_url, path)))[0] == 4401
    assert (await refused(ws_url(base_url, path, "not-a-jwt")))[0] == 4401

    settings, now = services.settings, int(time.time())
    expired = jwt.encode({"sub": BUYER_ID, "roles": ["buyer"], "type": "access", "jti": "x",
                          "iat": now - 3600, "exp": now - 60}, settings.jwt_secret_key,
                         algorithm=settings.jwt_algorithm)
    code, reason = await refused(ws_url(base_url, path, expired))
    assert (code, reason) == (4401, "Access token expired")

    token = await tokens(BUYER)
    await sessions.revoke_access_token(services.db, sessions.decode_access_token(settings, token))
    code, reason = await refused(ws_url(base_url, path, token))
    assert (code, reason) == (4401, "Access token revoked")
    assert (await refused(ws_url(base_url, "/ws/notifications")))[0] == 4401


@pytest.mark.gen_test
async def test_socket_is_closed_when_its_token_expires(services, base_url):
    settings, now = services.settings, int(time.time())
    short = jwt.encode({"sub": BUYER_ID, "roles": ["buyer"], "type": "access", "jti": "short",
                        "iat": now, "exp": now + 3}, settings.jwt_secret_key,
                       algorithm=settings.jwt_algorithm)
    conn, _ = await join(ws_url(base_url, "/ws/notifications", short), presence=False)
    assert await frame(conn, 10) is None
    assert (conn.close_code, conn.close_reason) == (4401, "Access token expired")


@pytest.mark.gen_test
async def test_token_from_header_or_cookie(base_url, api, tokens):
    token = await tokens(BUYER)
    ticket = await new_ticket(api, token)
    for headers in ({"Authorization": f"Bearer {token}"}, {"Cookie": f"access_token={token}"}):
        conn, opening = await join(ws_url(base_url, f"/ws/support/{ticket}"), headers)
        assert opening["connected"]["data"]["user_id"] == BUYER_ID
        conn.close()


@pytest.mark.gen_test
async def test_ticket_access_4403_4404_and_staff(base_url, api, tokens):
    ticket = await new_ticket(api, await tokens(BUYER))
    other = await tokens(BUYER2)
    assert await refused(ws_url(base_url, f"/ws/support/{ticket}", other)) == \
        (4403, "Not your ticket")
    assert await refused(ws_url(base_url, f"/ws/support/{ObjectId()}", other)) == \
        (4404, "Ticket not found")
    assert (await refused(ws_url(base_url, "/ws/support/not-an-id", other)))[0] == 4404

    conn, opening = await join(ws_url(base_url, f"/ws/support/{ticket}",
                                      await tokens(MODERATOR)))
    assert opening["connected"]["channel"] == f"support:{ticket}"
    assert opening["presence"]["data"]["staff_online"] is True
    conn.close()


@pytest.mark.gen_test
async def test_origin_must_be_allowed(base_url, api, tokens):
    token = await tokens(BUYER)
    url = ws_url(base_url, "/ws/notifications", token)
    with pytest.raises(HTTPClientError) as refused_origin:
        await connect(url, {"Origin": "https://evil.example"})
    assert refused_origin.value.code == 403
    conn, _ = await join(url, {"Origin": "http://localhost:3000"}, presence=False)
    conn.close()


# --------------------------------------------------------------------------- support

@pytest.mark.gen_test
async def test_support_message_frame_is_stored_like_rest(services, base_url, api, tokens):
    buyer, staff = await tokens(BUYER), await tokens(MODERATOR)
    ticket = await new_ticket(api, buyer)
    owner, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", buyer))
    agent, opening = await join(ws_url(base_url, f"/ws/support/{ticket}", staff))
    assert {u["username"] for u in opening["presence"]["data"]["users"]} == {"buyer", "moderator"}
    await next_of(owner, "presence_joined", where=lambda f: f["data"]["username"] == "moderator")

    await send(agent, {"type": "message", "content": "  On it!  ", "ref": "m1"})
    ack = await next_of(agent, "ack")
    assert ack["data"]["ref"] == "m1" and ack["data"]["for"] == "message"
    received = await next_of(owner, "message_received")
    assert received["data"]["content"] == "On it!"
    assert received["data"]["sender_type"] == "admin" and received["offset"] is not None
    status = await next_of(owner, "ticket_status_changed")
    assert status["data"] == {"ticket_id": ticket, "status": "active",
                              "previous_status": "pending"}

    detail = await api("GET", f"/api/support/tickets/{ticket}", token=buyer)
    assert [m["content"] for m in detail.json["messages"]] == ["Help", "On it!"]
    assert detail.json["message_count"] == 2 and detail.json["status"] == "active"
    assert ack["data"]["id"] == detail.json["messages"][1]["id"]

    reply = await api("POST", f"/api/support/tickets/{ticket}/messages", token=buyer,
                      json={"content": "Thanks"})
    assert reply.status == 201
    assert (await next_of(agent, "message_received"))["data"]["id"] == reply.json["id"]

    agent.close()
    left = await next_of(owner, "presence_left")
    assert left["data"]["username"] == "moderator" and left["offset"] is None
    owner.close()


@pytest.mark.gen_test
async def test_typing_is_throttled_and_not_stored(services, base_url, api, tokens):
    buyer = await tokens(BUYER)
    ticket = await new_ticket(api, buyer)
    owner, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", buyer))
    agent, _ = await join(ws_url(base_url, f"/ws/support/{ticket}",
                                 await tokens(ADMIN)))
    for _ in range(3):
        await send(owner, {"type": "typing", "is_typing": True})
    await send(owner, {"type": "typing", "is_typing": False})
    await send(owner, {"type": "ping", "ref": "sync"})
    await next_of(owner, "pong")
    await send(agent, {"type": "ping"})
    seen = []
    while (got := await frame(agent))["type"] != "pong":
        if got["type"] == "typing_indicator":
            seen.append(got["data"]["is_typing"])
    assert seen == [True, False]
    assert await services.db.support_messages.count_documents(
        {"ticket_id": ObjectId(ticket)}) == 1
    owner.close()
    agent.close()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings_overrides", [
    {"rate_limits_enabled": True, "rate_limit_default": RateLimit(3, 60)}], indirect=True)
async def test_message_frames_share_the_rest_rate_limit(services, base_url, api, tokens):
    buyer = await tokens(BUYER)
    ticket = await new_ticket(api, buyer)                                   # request 1
    conn, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", buyer))
    for n in range(2):                                                      # 2 and 3
        await send(conn, {"type": "message", "content": f"m{n}"})
        await next_of(conn, "ack")
    await send(conn, {"type": "message", "content": "one too many"})
    error = await next_of(conn, "error")
    assert error["data"]["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert error["data"]["retry_after"] >= 1
    assert await services.db.support_messages.count_documents(
        {"ticket_id": ObjectId(ticket)}) == 3
    conn.close()


# --------------------------------------------------------------------------- bad frames

BAD_FRAMES = [
    ("{not json", "INVALID_JSON"),
    ("[1, 2]", "INVALID_FRAME"),
    ('{"content": "no type"}', "INVALID_FRAME"),
    ('{"type": "shout"}', "UNKNOWN_FRAME_TYPE"),
    ('{"type": "message"}', "VALIDATION_ERROR"),
    ('{"type": "message", "content": 5}', "VALIDATION_ERROR"),
    ('{"type": "message", "content": "   "}', "VALIDATION_ERROR"),
    (json.dumps({"type": "message", "content": "x" * 5001}), "VALIDATION_ERROR"),
    ('{"type": "message", "content": "hi", "attachments": "a.png"}', "VALIDATION_ERROR"),
    ('{"type": "message", "content": "hi", "attachments": ["https://evil.example/x"]}',
     "VALIDATION_ERROR"),
    ('{"type": "message", "content": "hi", "color": "red"}', "VALIDATION_ERROR"),
    ('{"type": "typing", "is_typing": "maybe"}', "VALIDATION_ERROR"),
    ('{"type": "read", "id": 7}', "VALIDATION_ERROR"),
    ('{"type": "ping", "ref": ["x"]}', "VALIDATION_ERROR"),
    (b"\x00\x01binary", "INVALID_FRAME"),
    ('{"type": "message", "content": "half a pair \\ud800 here"}', "VALIDATION_ERROR"),
    ('{"type": "message", "content": "a NUL \\u0000 here"}', "VALIDATION_ERROR"),
]


@pytest.mark.gen_test
async def test_every_bad_frame_gets_an_error_and_the_socket_stays_open(services, base_url, api,
                                                                       tokens):
    buyer = await tokens(BUYER)
    ticket = await new_ticket(api, buyer)
    conn, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", buyer))
    for payload, code in BAD_FRAMES:
        await send(conn, payload)
        error = await next_of(conn, "error")
        assert error["data"]["error_code"] == code, (payload, error)
        assert error["data"]["detail"]
    await send(conn, {"type": "ping", "ref": "still-open"})
    assert (await next_of(conn, "pong"))["data"]["ref"] == "still-open"
    assert await services.db.support_messages.count_documents(
        {"ticket_id": ObjectId(ticket)}) == 1
    conn.close()


@pytest.mark.gen_test
async def test_notifications_socket_refuses_writes_and_marks_read(services, base_url, tokens):
    token = await tokens(BUYER)
    conn, opening = await join(ws_url(base_url, "/ws/notifications", token), presence=False)
    assert opening["connected"]["channel"] == f"notifications:{BUYER_ID}"
    for payload in ({"type": "message", "content": "hi"}, {"type": "typing"}, {"type": "read"}):
        await send(conn, payload)
        assert (await next_of(conn, "error"))["data"]["error_code"] in ("NOT_ALLOWED",
                                                                        "VALIDATION_ERROR")

    note = await notifications.notify(services.db, services.hub, BUYER_ID, "new_follower",
                                      "New follower", "buyer2 followed you")
    event = await next_of(conn, "new_follower")
    assert event["data"]["id"] == note["id"] and event["offset"] is not None
    other = await notifications.notify(services.db, services.hub, BUYER2_ID, "new_follower",
                                       "New follower", "not for buyer")

    await send(conn, {"type": "read", "id": other["id"]})
    assert (await next_of(conn, "error"))["data"]["error_code"] == "NOT_FOUND"
    await send(conn, {"type": "read", "id": note["id"], "ref": "r"})
    assert (await next_of(conn, "ack"))["data"] == {"for": "read", "ref": "r", "id": note["id"],
                                                    "updated": 1}
    assert (await services.db.notifications.find_one({"_id": ObjectId(note["id"])}))["is_read"]
    await send(conn, {"type": "read", "all": True})
    assert (await next_of(conn, "ack"))["data"]["updated"] == 0
    conn.close()


# --------------------------------------------------------------------------- community

@pytest.mark.gen_test
async def test_community_access_and_chat(services, base_url, tokens):
    db = services.db
    public = await new_community(db, members=(BUYER_ID,))
    private = await new_community(db, private=True, members=(BUYER_ID,))
    suspended = await new_community(db, status="suspended", members=(BUYER_ID,))
    buyer, outsider = await tokens(BUYER), await tokens(BUYER2)

    assert (await refused(ws_url(base_url, f"/ws/community/{ObjectId()}", buyer)))[0] == 4404
    assert (await refused(ws_url(base_url, "/ws/community/x", buyer)))[0] == 4404
    assert (await refused(ws_url(base_url, f"/ws/community/{private}", outsider)))[0] == 4403
    assert (await refused(ws_url(base_url, f"/ws/community/{suspended}", buyer)))[0] == 4404
    staff, _ = await join(ws_url(base_url, f"/ws/community/{private}",
                                 await tokens(MODERATOR)))
    staff.close()

    member, _ = await join(ws_url(base_url, f"/ws/community/{public}", buyer))
    reader, _ = await join(ws_url(base_url, f"/ws/community/{public}", outsider))
    await send(reader, {"type": "message", "content": "can I post?"})
    assert (await next_of(reader, "error"))["data"]["error_code"] == "NOT_ALLOWED"
    await send(reader, {"type": "typing"})
    assert (await next_of(reader, "error"))["data"]["error_code"] == "NOT_ALLOWED"

    await send(member, {"type": "message", "content": "Hello sculptors"})
    chat = await next_of(reader, "message_received")
    assert chat["channel"] == f"community:{public}"
    assert chat["data"]["content"] == "Hello sculptors"
    assert chat["data"]["sender"]["username"] == "buyer"
    stored = await db[communities.CHAT].find_one({"_id": ObjectId(chat["data"]["id"])})
    assert stored["content"] == "Hello sculptors" and str(stored["community_id"]) == public

    await services.hub.publish(f"community:{public}", "new_post", {"id": "p1", "content": "Hi"})
    assert (await next_of(member, "new_post"))["data"] == {"id": "p1", "content": "Hi"}
    assert (await next_of(reader, "new_post"))["data"]["id"] == "p1"
    member.close()
    reader.close()


# --------------------------------------------------------------------------- recovery

@pytest.fixture
def settings_overrides(request):
    return getattr(request, "param", {"history_size": 5})


@pytest.mark.gen_test
async def test_since_recovers_exactly_the_missed_events(services, base_url, tokens):
    token = await tokens(BUYER)
    channel, hub = f"notifications:{BUYER_ID}", services.hub
    conn, _ = await join(ws_url(base_url, "/ws/notifications", token), presence=False)
    first = await hub.publish(channel, "announcement", {"n": 0})
    assert (await next_of(conn, "announcement"))["offset"] == first["offset"]
    conn.close()
    await until(lambda: hub.local_count(channel) == 0)

    missed = [await hub.publish(channel, "announcement", {"n": n}) for n in (1, 2, 3)]
    url = ws_url(base_url, "/ws/notifications", token, since=first["offset"])
    conn = await connect(url)
    assert (await frame(conn))["data"]["offset"] == missed[-1]["offset"]      # connected
    recovered = await frame(conn)
    assert recovered["type"] == "recovered"
    assert recovered["data"] == {"recovered": True, "since": first["offset"], "missed": 3,
                                 "offset": missed[-1]["offset"], "reason": None}
    got = [await frame(conn) for _ in missed]
    assert [(f["offset"], f["data"]["n"]) for f in got] == [(m["offset"], m["data"]["n"])
                                                            for m in missed]
    live = await hub.publish(channel, "announcement", {"n": 4})
    assert (await frame(conn))["offset"] == live["offset"]
    conn.close()


@pytest.mark.gen_test
async def test_since_past_the_history_bound_is_not_recovered(services, base_url, tokens):
    token, channel = await tokens(BUYER), f"notifications:{BUYER_ID}"
    first = await services.hub.publish(channel, "announcement", {"n": 0})
    for n in range(6):                                         # history_size is 5
        await services.hub.publish(channel, "announcement", {"n": n + 1})
    for since in (first["offset"], "abc", first["offset"] + 100):
        conn = await connect(ws_url(base_url, "/ws/notifications", token, since=since))
        recovered = await next_of(conn, "recovered")
        assert recovered["data"]["recovered"] is False
        assert recovered["data"]["reason"] == ("invalid_since" if since == "abc"
                                               else "history_expired")
        live = await services.hub.publish(channel, "announcement", {"n": "live"})
        assert (await frame(conn))["offset"] == live["offset"]    # no stale history sent
        conn.close()


# --------------------------------------------------------------------------- limits

@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings_overrides", [{"ws_queue_size": 8}], indirect=True)
async def test_slow_consumer_is_closed_and_others_keep_receiving(services, base_url, tokens):
    hub, channel = services.hub, f"notifications:{BUYER_ID}"
    token = await tokens(BUYER)
    slow, _ = await join(ws_url(base_url, "/ws/notifications", token), presence=False)
    fast, _ = await join(ws_url(base_url, "/ws/notifications", token), presence=False)
    received, blob = [], "x" * 60_000

    async def reader():
        while len(received) < 300:
            got = await frame(fast, 10)
            received.append(got["data"]["n"])

    reading = asyncio.ensure_future(reader())
    for n in range(300):                      # 18 MB: more than the kernel buffers hold
        await hub.publish(channel, "announcement", {"n": n, "blob": blob})
        await until(lambda n=n: len(received) >= n - 2, 10)    # paced by the reading client
    await asyncio.wait_for(reading, 20)
    assert received == list(range(300))
    await until(lambda: hub.local_count(channel) == 1, 10)
    assert services.metrics.slow_consumers.labels("notifications")._value.get() == 1
    await send(fast, {"type": "ping"})
    assert (await next_of(fast, "pong"))["type"] == "pong"
    slow.close()
    fast.close()


@pytest.mark.gen_test
async def test_shutdown_closes_sockets_with_1001(services, base_url, api, tokens):
    token = await tokens(BUYER)
    ticket = await new_ticket(api, token)
    support_conn, _ = await join(ws_url(base_url, f"/ws/support/{ticket}", token))
    note_conn, _ = await join(ws_url(base_url, "/ws/notifications", token), presence=False)
    assert services.metrics.sockets.labels("support")._value.get() == 1
    await services.hub.shutdown()
    for conn in (support_conn, note_conn):
        while await frame(conn) is not None:
            pass
        assert (conn.close_code, conn.close_reason) == (1001, "server shutting down")
    assert services.hub.local_count() == 0
    assert services.metrics.sockets.labels("support")._value.get() == 0
    assert (await refused(ws_url(base_url, "/ws/notifications", token)))[0] == 1001
