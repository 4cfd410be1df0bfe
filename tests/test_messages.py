"""Direct messages over REST (seed 001 `/dashboard/messages`, seed 004): conversations,
cursor-paginated history, sending, read receipts with exact unread counts; only the two
participants can see a conversation."""
import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, BUYER2_ID, BUYER_ID, CREATOR, CREATOR_ID

from documents import messages, users


async def dm(api, token, content="Hello!", **to):
    to = to or {"recipient_id": BUYER2_ID}
    reply = await api("POST", "/api/messages", json={**to, "content": content}, token=token)
    assert reply.status == 201, reply.json
    return reply.json


@pytest.mark.gen_test
async def test_first_message_creates_the_conversation(api, tokens, services):
    message = await dm(api, await tokens(BUYER), "  Hi there  ",
                       recipient_username="Buyer2")
    assert message["content"] == "Hi there" and message["read_at"] is None
    assert message["sender_id"] == BUYER_ID and message["recipient_id"] == BUYER2_ID
    assert message["sender"]["username"] == "buyer"
    conversation = await services.db.conversations.find_one(
        {"_id": ObjectId(message["conversation_id"])})
    assert conversation["participants_key"] == f"{BUYER_ID}:{BUYER2_ID}"
    assert conversation["unread"] == {BUYER_ID: 0, BUYER2_ID: 1}
    assert await services.db.notifications.count_documents({}) == 0   # DMs are not stored there


@pytest.mark.gen_test
async def test_both_directions_share_one_conversation(api, tokens, services):
    first = await dm(api, await tokens(BUYER))
    back = await dm(api, await tokens(BUYER2), "Hi back", recipient_id=BUYER_ID)
    assert first["conversation_id"] == back["conversation_id"]
    assert await services.db.conversations.count_documents({}) == 1


@pytest.mark.gen_test
async def test_racing_first_messages_create_one_conversation(api, tokens, services):
    a, b = await tokens(BUYER), await tokens(BUYER2)
    replies = await asyncio.gather(
        *[api("POST", "/api/messages", json={"recipient_id": rid, "content": f"m{i}"}, token=t)
          for i, (t, rid) in enumerate([(a, BUYER2_ID), (b, BUYER_ID)] * 3)])
    assert [r.status for r in replies] == [201] * 6
    assert len({r.json["conversation_id"] for r in replies}) == 1
    conversation = await services.db.conversations.find_one({})
    assert conversation["unread"] == {BUYER_ID: 3, BUYER2_ID: 3}


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/api/messages", "/api/messages/conversations"])
async def test_conversation_list(api, tokens, path):
    buyer, buyer2, creator = await tokens(BUYER), await tokens(BUYER2), await tokens(CREATOR)
    await dm(api, buyer, "to buyer2")
    await dm(api, creator, "from creator", recipient_id=BUYER_ID)
    await dm(api, buyer2, "reply from buyer2", recipient_id=BUYER_ID)
    await dm(api, creator, "to buyer2 only")
    reply = await api("GET", path, token=buyer)
    assert reply.status == 200
    body = reply.json
    assert body["total"] == 2 and body["unread_total"] == 2
    first, second = body["items"]
    assert first["participant"]["username"] == "buyer2"      # newest activity first
    assert first["last_message"]["content"] == "reply from buyer2"
    assert first["unread_count"] == 1
    assert second["participant"]["id"] == CREATOR_ID and second["unread_count"] == 1
    paged = await api("GET", f"{path}?limit=1&page=2", token=buyer)
    assert [c["participant"]["username"] for c in paged.json["items"]] == ["creator"]
    assert paged.json["pages"] == 2


@pytest.mark.gen_test
async def test_history_newest_first_with_cursor(api, tokens):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    sent = []
    for i in range(5):
        token, to = (buyer, BUYER2_ID) if i % 2 == 0 else (buyer2, BUYER_ID)
        sent.append(await dm(api, token, f"m{i}", recipient_id=to))
    path = f"/api/messages/{sent[0]['conversation_id']}"
    page = await api("GET", f"{path}?limit=2", token=buyer)
    assert page.status == 200
    assert [m["content"] for m in page.json["items"]] == ["m4", "m3"]
    assert page.json["has_more"] is True and page.json["next_cursor"] == sent[3]["id"]
    seen = [m["content"] for m in page.json["items"]]
    cursor = page.json["next_cursor"]
    while cursor:
        page = await api("GET", f"{path}?limit=2&before={cursor}", token=buyer2)
        seen += [m["content"] for m in page.json["items"]]
        cursor = page.json["next_cursor"]
    assert seen == ["m4", "m3", "m2", "m1", "m0"] and page.json["has_more"] is False


@pytest.mark.gen_test
async def test_send_into_conversation(api, tokens):
    first = await dm(api, await tokens(BUYER))
    reply = await api("POST", f"/api/messages/{first['conversation_id']}/send",
                      json={"content": "Thanks!"}, token=await tokens(BUYER2))
    assert reply.status == 201
    assert reply.json["recipient_id"] == BUYER_ID
    assert reply.json["conversation_id"] == first["conversation_id"]


@pytest.mark.gen_test
async def test_mark_read_marks_earlier_messages_and_fixes_unread(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    msgs = [await dm(api, buyer, f"m{i}") for i in range(4)]
    reply = await api("PUT", f"/api/messages/{msgs[2]['id']}/read", token=buyer2)
    assert reply.status == 200
    assert reply.json == {"conversation_id": msgs[0]["conversation_id"], "marked": 3,
                          "unread_count": 1}
    read = await services.db.direct_messages.count_documents({"read_at": {"$ne": None}})
    assert read == 3
    again = await api("PUT", f"/api/messages/{msgs[1]['id']}/read", token=buyer2)
    assert again.json["marked"] == 0 and again.json["unread_count"] == 1
    listed = await api("GET", "/api/messages", token=buyer2)
    assert listed.json["items"][0]["unread_count"] == 1
    await api("PUT", f"/api/messages/{msgs[3]['id']}/read", token=buyer2)
    conversation = await services.db.conversations.find_one({})
    assert conversation["unread"][BUYER2_ID] == 0


@pytest.mark.gen_test
async def test_only_the_recipient_marks_read(api, tokens):
    message = await dm(api, await tokens(BUYER))
    sender = await api("PUT", f"/api/messages/{message['id']}/read", token=await tokens(BUYER))
    assert sender.status == 403
    stranger = await api("PUT", f"/api/messages/{message['id']}/read",
                         token=await tokens(CREATOR))
    assert stranger.status == 404


@pytest.mark.gen_test
async def test_strangers_cannot_read_or_write_a_conversation(api, tokens, services):
    message = await dm(api, await tokens(BUYER))
    stranger = await tokens(CREATOR)
    path = f"/api/messages/{message['conversation_id']}"
    reply = await api("GET", path, token=stranger)
    assert reply.status == 404 and reply.json["reason"] == "CONVERSATION_NOT_FOUND"
    reply = await api("POST", f"{path}/send", json={"content": "sneaky"}, token=stranger)
    assert reply.status == 404
    assert await services.db.direct_messages.count_documents({}) == 1
    assert (await api("GET", "/api/messages", token=stranger)).json["total"] == 0
    staff = await api("GET", path, token=await tokens(ADMIN))
    assert staff.status == 404                    # private: not even staff read DMs


@pytest.mark.gen_test
async def test_routes_require_a_token(api):
    some = str(ObjectId())
    for method, path in [("GET", "/api/messages"), ("GET", "/api/messages/conversations"),
                         ("POST", "/api/messages"), ("GET", f"/api/messages/{some}"),
                         ("POST", f"/api/messages/{some}/send"),
                         ("PUT", f"/api/messages/{some}/read")]:
        reply = await api(method, path, json={} if method != "GET" else None)
        assert reply.status == 401, path


@pytest.mark.gen_test
@pytest.mark.parametrize("ref", ["nope", "123", str(ObjectId())])
async def test_invalid_ids_are_404(api, tokens, ref):
    token = await tokens(BUYER)
    assert (await api("GET", f"/api/messages/{ref}", token=token)).status == 404
    assert (await api("POST", f"/api/messages/{ref}/send", json={"content": "x"},
                      token=token)).status == 404
    assert (await api("PUT", f"/api/messages/{ref}/read", token=token)).status == 404


@pytest.mark.gen_test
async def test_message_to_yourself_is_400(api, tokens, services):
    reply = await api("POST", "/api/messages", json={"recipient_id": BUYER_ID, "content": "me"},
                      token=await tokens(BUYER))
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_MESSAGE_SELF"
    assert await services.db.conversations.count_documents({}) == 0


@pytest.mark.gen_test
async def test_unknown_recipient_is_404(api, tokens):
    token = await tokens(BUYER)
    for to in ({"recipient_id": str(ObjectId())}, {"recipient_username": "ghost"}):
        reply = await api("POST", "/api/messages", json={**to, "content": "x"}, token=token)
        assert reply.status == 404 and reply.json["reason"] == "USER_NOT_FOUND"


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    {"recipient_id": BUYER2_ID, "content": ""},
    {"recipient_id": BUYER2_ID, "content": "   "},
    {"recipient_id": BUYER2_ID, "content": "x" * 5001},
    {"recipient_id": BUYER2_ID, "content": 5},
    {"recipient_id": BUYER2_ID},
    {"content": "no recipient"},
    {"recipient_id": BUYER2_ID, "recipient_username": "buyer2", "content": "both"},
    {"recipient_id": BUYER2_ID, "content": "x", "subject": "extra"},
    {"recipient_id": BUYER2_ID, "content": "x", "attachments": ["http://evil.test/a.png"]},
    [],
])
async def test_send_rejects_bad_input(api, tokens, services, body):
    reply = await api("POST", "/api/messages", json=body, token=await tokens(BUYER))
    assert reply.status == 422, reply.json
    assert await services.db.direct_messages.count_documents({}) == 0
    assert await services.db.conversations.count_documents({}) == 0


@pytest.mark.gen_test
async def test_malformed_json_is_400(api, tokens):
    reply = await api("POST", "/api/messages", body=b'{"recipient_id": ',
                      headers={"Content-Type": "application/json"}, token=await tokens(BUYER))
    assert reply.status == 400


@pytest.mark.gen_test
@pytest.mark.parametrize("qs", ["before=nope", "limit=0", "limit=x"])
async def test_history_rejects_bad_query(api, tokens, qs):
    message = await dm(api, await tokens(BUYER))
    reply = await api("GET", f"/api/messages/{message['conversation_id']}?{qs}",
                      token=await tokens(BUYER))
    assert reply.status == 422


class RecordingHub:
    """A hub handed to `documents.messages` directly: keeps what was published."""

    def __init__(self):
        self.events = []

    async def publish(self, channel, type, data):
        self.events.append((channel, type, data))
        return {}


@pytest.mark.gen_test
async def test_send_publishes_on_the_recipients_channel(services):
    hub = RecordingHub()
    sender, recipient = (await users.get(services.db, BUYER_ID),
                         await users.get(services.db, BUYER2_ID))
    message = await messages.send(services.db, hub, sender, recipient, "psst", [])
    assert hub.events == [(f"notifications:{BUYER2_ID}", "direct_message", message)]
