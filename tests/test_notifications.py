"""Notifications over REST (seed 001 §18, seed 004): list with unread_count, filters, mark
read, read-all, delete; only the owner's notifications exist for a caller."""
import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, BUYER2, BUYER2_ID, BUYER_ID

from documents import notifications

LIST_ROUTES = ("/api/notifications", "/api/users/me/notifications",
               "/api/dashboard/notifications")


async def make(services, user_id, n=1, type="model_liked"):
    return [await notifications.notify(services.db, services.hub, user_id, type,
                                       "Someone liked your model", f"Alex liked model {i}",
                                       data={"model_id": str(ObjectId())},
                                       action_url=f"/model/{i}")
            for i in range(n)]


@pytest.mark.gen_test
async def test_notify_stores_the_document(services):
    [note] = await make(services, BUYER_ID)
    stored = await services.db.notifications.find_one({"_id": ObjectId(note["id"])})
    assert stored["user_id"] == ObjectId(BUYER_ID) and stored["is_read"] is False
    assert stored["type"] == "model_liked" and stored["action_url"] == "/model/0"
    assert note["created_at"].endswith("Z") and note["user_id"] == BUYER_ID


@pytest.mark.gen_test
@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_list_newest_first_with_unread_count(api, tokens, services, path):
    await make(services, BUYER_ID, 3)
    await make(services, BUYER2_ID, 2)
    reply = await api("GET", f"{path}?limit=2", token=await tokens(BUYER))
    assert reply.status == 200
    body = reply.json
    assert body["total"] == 3 and body["pages"] == 2 and body["page"] == 1 and body["limit"] == 2
    assert body["unread_count"] == 3
    assert body["notifications"] == body["items"]
    assert [n["message"] for n in body["items"]] == ["Alex liked model 2", "Alex liked model 1"]
    assert set(body["items"][0]) >= {"id", "type", "title", "message", "is_read", "created_at",
                                     "action_url", "data"}


@pytest.mark.gen_test
async def test_filter_unread_and_type(api, tokens, services):
    notes = await make(services, BUYER_ID, 3)
    await make(services, BUYER_ID, 1, type="new_follower")
    token = await tokens(BUYER)
    await api("PUT", f"/api/notifications/{notes[0]['id']}/read", token=token)
    unread = await api("GET", "/api/notifications?filter=unread", token=token)
    assert unread.json["total"] == 3 and unread.json["unread_count"] == 3
    assert notes[0]["id"] not in {n["id"] for n in unread.json["items"]}
    everything = await api("GET", "/api/notifications?filter=all", token=token)
    assert everything.json["total"] == 4
    follows = await api("GET", "/api/notifications?type=new_follower", token=token)
    assert [n["type"] for n in follows.json["items"]] == ["new_follower"]


@pytest.mark.gen_test
async def test_mark_one_read(api, tokens, services):
    notes = await make(services, BUYER_ID, 2)
    reply = await api("PUT", f"/api/notifications/{notes[1]['id']}/read",
                      token=await tokens(BUYER))
    assert reply.status == 200
    assert reply.json["is_read"] is True and reply.json["unread_count"] == 1
    stored = await services.db.notifications.find_one({"_id": ObjectId(notes[1]["id"])})
    assert stored["is_read"] is True


@pytest.mark.gen_test
async def test_read_all_counts_only_own_unread(api, tokens, services):
    notes = await make(services, BUYER_ID, 3)
    await make(services, BUYER2_ID, 2)
    token = await tokens(BUYER)
    await api("PUT", f"/api/notifications/{notes[0]['id']}/read", token=token)
    reply = await api("PUT", "/api/notifications/read-all", token=token)
    assert reply.status == 200 and reply.json == {"updated": 2, "unread_count": 0}
    assert await services.db.notifications.count_documents(
        {"user_id": ObjectId(BUYER2_ID), "is_read": False}) == 2
    again = await api("PUT", "/api/notifications/read-all", token=token)
    assert again.json["updated"] == 0


@pytest.mark.gen_test
async def test_delete_own(api, tokens, services):
    [note] = await make(services, BUYER_ID)
    token = await tokens(BUYER)
    reply = await api("DELETE", f"/api/notifications/{note['id']}", token=token)
    assert reply.status == 204 and reply.body == b""
    assert await services.db.notifications.count_documents({}) == 0
    again = await api("DELETE", f"/api/notifications/{note['id']}", token=token)
    assert again.status == 404


@pytest.mark.gen_test
async def test_other_users_notification_is_404(api, tokens, services):
    [note] = await make(services, BUYER_ID)
    other = await tokens(BUYER2)
    for method, path in [("PUT", f"/api/notifications/{note['id']}/read"),
                         ("DELETE", f"/api/notifications/{note['id']}")]:
        reply = await api(method, path, token=other)
        assert reply.status == 404 and reply.json["error_code"] == "NOT_FOUND"
    stored = await services.db.notifications.find_one({"_id": ObjectId(note["id"])})
    assert stored is not None and stored["is_read"] is False
    listed = await api("GET", "/api/notifications", token=other)
    assert listed.json["total"] == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("ref", ["nope", "123", str(ObjectId())])
async def test_invalid_ids_are_404(api, tokens, ref):
    token = await tokens(BUYER)
    assert (await api("PUT", f"/api/notifications/{ref}/read", token=token)).status == 404
    assert (await api("DELETE", f"/api/notifications/{ref}", token=token)).status == 404


@pytest.mark.gen_test
async def test_routes_require_a_token(api):
    some = str(ObjectId())
    for method, path in [*(("GET", p) for p in LIST_ROUTES),
                         ("PUT", f"/api/notifications/{some}/read"),
                         ("PUT", "/api/notifications/read-all"),
                         ("DELETE", f"/api/notifications/{some}")]:
        reply = await api(method, path)
        assert reply.status == 401 and reply.json["error_code"] == "UNAUTHORIZED", path


@pytest.mark.gen_test
@pytest.mark.parametrize("qs", ["filter=read", "limit=0", "limit=x", "page=-1", "type=spam",
                                "page=abc"])
async def test_list_rejects_bad_query(api, tokens, qs):
    reply = await api("GET", f"/api/notifications?{qs}", token=await tokens(BUYER))
    assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR"


@pytest.mark.gen_test
async def test_ticket_reply_creates_a_notification(api, tokens):
    buyer = await tokens(BUYER)
    ticket = await api("POST", "/api/support/tickets", token=buyer,
                       json={"subject": "Help me", "category": "Other", "message": "Hello"})
    await api("POST", f"/api/admin/support/tickets/{ticket.json['id']}/messages",
              json={"content": "Hi, how can we help?"}, token=await tokens(ADMIN))
    inbox = await api("GET", "/api/users/me/notifications", token=buyer)
    [note] = inbox.json["items"]
    assert note["type"] == "ticket_reply" and note["is_read"] is False
    assert note["action_url"] == f"/support?ticket={ticket.json['id']}"
