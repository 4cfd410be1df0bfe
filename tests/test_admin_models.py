"""Model moderation by staff: the queue, approve/reject (PUT and POST), 409 on a repeated
or racing transition, counters, notifications to the creator, featuring, admin delete."""
import asyncio
import uuid

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR, MODERATOR

from documents import model_writes, users


async def make_model(db, *, status="pending", **data) -> dict:
    owner = await users.get_by_email(db, CREATOR)
    fields = {"title": f"Moderated {uuid.uuid4().hex[:8]}", "category": "Characters",
              "price": "15.00", **data}
    model = await model_writes.create_model(
        db, creator=owner, data=fields,
        model_file={"_id": ObjectId(), "key": f"models/{uuid.uuid4().hex}.glb", "size": 10,
                    "format": "GLB", "analysis": {"analyzed": True, "poly_count": 12}},
        thumbnail=None, previews=[])
    admin = await users.get_by_email(db, ADMIN)
    if status == "approved":
        model = await model_writes.approve(db, model["_id"], admin)
    elif status == "rejected":
        model = await model_writes.reject(db, model["_id"], admin, "Too blurry")
    return model


async def counts(db, category="Characters") -> tuple[int, int]:
    cat = await db.categories.find_one({"name": category})
    creator = await users.get_by_email(db, CREATOR)
    return cat["model_count"], creator["total_models"]


async def notifications_of(db, model, kind) -> list[dict]:
    return await db.notifications.find({"user_id": model["creator_id"], "type": kind,
                                        "data.model_id": str(model["_id"])}).to_list(None)


# --------------------------------------------------------------------------- the queue

@pytest.mark.gen_test
async def test_moderation_list_requires_staff(api, tokens):
    assert (await api("GET", "/api/admin/models")).status == 401
    for email in (BUYER, CREATOR):
        reply = await api("GET", "/api/admin/models", token=await tokens(email))
        assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN"
    for email in (MODERATOR, ADMIN):
        assert (await api("GET", "/api/admin/models", token=await tokens(email))).status == 200


@pytest.mark.gen_test
async def test_moderation_list_filters(api, services, tokens):
    db = services.db
    word = uuid.uuid4().hex[:10]
    pending = await make_model(db, title=f"Queue {word} one")
    approved = await make_model(db, title=f"Queue {word} two", status="approved")
    rejected = await make_model(db, title=f"Queue {word} three", status="rejected")
    token = await tokens(MODERATOR)
    everything = await api("GET", f"/api/admin/models?search={word}", token=token)
    assert everything.status == 200 and everything.json["total"] == 3
    item = next(i for i in everything.json["items"] if i["id"] == str(rejected["_id"]))
    assert item["rejection_reason"] == "Too blurry" and item["file_key"] == rejected["file_key"]
    assert item["creator"]["username"] == "creator"
    for status, model in (("pending", pending), ("approved", approved), ("rejected", rejected)):
        reply = await api("GET", f"/api/admin/models?status={status}&search={word}", token=token)
        assert [i["id"] for i in reply.json["items"]] == [str(model["_id"])], status
    by_creator = await api("GET", f"/api/admin/models?creator=creator&search={word}", token=token)
    assert by_creator.json["total"] == 3
    for bad in ("status=deleted", "limit=0", "page=x"):
        assert (await api("GET", f"/api/admin/models?{bad}", token=token)).status == 422


@pytest.mark.gen_test
async def test_pending_queue_is_oldest_first(api, services, tokens):
    word = uuid.uuid4().hex[:10]
    first = await make_model(services.db, title=f"Old {word}")
    second = await make_model(services.db, title=f"New {word}")
    reply = await api("GET", f"/api/admin/models?status=pending&search={word}",
                      token=await tokens(MODERATOR))
    assert [i["id"] for i in reply.json["items"]] == [str(first["_id"]), str(second["_id"])]


@pytest.mark.gen_test
async def test_admin_get_and_delete(api, services, tokens):
    db = services.db
    model = await make_model(db, status="approved")
    before = await counts(db)
    token = await tokens(MODERATOR)
    path = f"/api/admin/models/{model['_id']}"
    got = await api("GET", path, token=token)
    assert got.status == 200 and got.json["file_key"] == model["file_key"]
    assert (await api("GET", path, token=await tokens(CREATOR))).status == 403
    assert (await api("DELETE", path, token=await tokens(BUYER))).status == 403
    assert (await api("DELETE", path, token=token)).status == 204
    assert await db.models.find_one({"_id": model["_id"]}) is None
    assert await counts(db) == (before[0] - 1, before[1] - 1)
    assert (await api("GET", path, token=token)).status == 404
    assert (await api("DELETE", path, token=token)).status == 404
    assert (await api("GET", "/api/admin/models/not-an-id", token=token)).status == 404
    action = await db.admin_actions.find_one({"target_id": model["_id"]})
    assert action["action_type"] == "model_deleted"


# --------------------------------------------------------------------------- approve

@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.gen_test
async def test_approve_publishes_counts_and_notifies(api, services, tokens, method):
    db = services.db
    model = await make_model(db)
    before = await counts(db)
    token = await tokens(MODERATOR)
    reply = await api(method, f"/api/admin/models/{model['_id']}/approve", token=token)
    assert reply.status == 200, reply.json
    assert reply.json["status"] == "approved" and reply.json["approved_at"].endswith("Z")
    assert reply.json["approved_by"] == "650000000000000000000002"
    assert await counts(db) == (before[0] + 1, before[1] + 1)
    assert (await api("GET", f"/api/models/{model['_id']}")).status == 200
    sent = await notifications_of(db, model, "model_approved")
    assert len(sent) == 1 and sent[0]["action_url"] == f"/model/{model['_id']}"
    action = await db.admin_actions.find_one({"target_id": model["_id"]})
    assert action["action_type"] == "model_approved" and action["target_type"] == "model"

    again = await api(method, f"/api/admin/models/{model['_id']}/approve", token=token)
    assert again.status == 409 and again.json["error_code"] == "INVALID_STATE"
    assert await counts(db) == (before[0] + 1, before[1] + 1)
    assert len(await notifications_of(db, model, "model_approved")) == 1


@pytest.mark.gen_test
async def test_racing_approvals_count_once(api, services, tokens):
    db = services.db
    model = await make_model(db)
    before = await counts(db)
    token = await tokens(MODERATOR)
    admin_token = await tokens(ADMIN)
    replies = await asyncio.gather(
        api("PUT", f"/api/admin/models/{model['_id']}/approve", token=token),
        api("POST", f"/api/admin/models/{model['_id']}/approve", token=admin_token),
        api("PUT", f"/api/admin/models/{model['_id']}/approve", token=admin_token))
    assert sorted(r.status for r in replies) == [200, 409, 409]
    assert await counts(db) == (before[0] + 1, before[1] + 1)
    assert len(await notifications_of(db, model, "model_approved")) == 1


@pytest.mark.gen_test
async def test_approve_permissions_and_ids(api, services, tokens):
    model = await make_model(services.db)
    path = f"/api/admin/models/{model['_id']}/approve"
    assert (await api("PUT", path)).status == 401
    assert (await api("PUT", path, token=await tokens(CREATOR))).status == 403
    assert (await services.db.models.find_one({"_id": model["_id"]}))["status"] == "pending"
    token = await tokens(MODERATOR)
    for bad in ("nope", str(ObjectId())):
        reply = await api("PUT", f"/api/admin/models/{bad}/approve", token=token)
        assert reply.status == 404
    assert (await api("PUT", path, json={"colour": "red"}, token=token)).status == 422
    assert (await api("PUT", path, body=b"{oops", token=token,
                      headers={"Content-Type": "application/json"})).status == 400


# --------------------------------------------------------------------------- reject

@pytest.mark.parametrize("payload", [None, {}, {"reason": ""}, {"reason": "ab"},
                                     {"reason": "   x  "}, {"reason": "r" * 501},
                                     {"reason": 42}, {"reason": "fine reason", "extra": 1}])
@pytest.mark.gen_test
async def test_reject_needs_a_reason(api, services, tokens, payload):
    model = await make_model(services.db)
    reply = await api("PUT", f"/api/admin/models/{model['_id']}/reject", json=payload,
                      token=await tokens(MODERATOR))
    assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR"
    assert (await services.db.models.find_one({"_id": model["_id"]}))["status"] == "pending"


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.gen_test
async def test_reject_pending_model(api, services, tokens, method):
    db = services.db
    model = await make_model(db)
    before = await counts(db)
    token = await tokens(MODERATOR)
    reply = await api(method, f"/api/admin/models/{model['_id']}/reject",
                      json={"reason": "  Does not meet quality standards "}, token=token)
    assert reply.status == 200
    assert reply.json["status"] == "rejected"
    assert reply.json["rejection_reason"] == "Does not meet quality standards"
    assert await counts(db) == before
    sent = await notifications_of(db, model, "model_rejected")
    assert len(sent) == 1 and "Does not meet quality standards" in sent[0]["message"]
    own = await api("GET", f"/api/models/{model['_id']}", token=await tokens(CREATOR))
    assert own.json["rejection_reason"] == "Does not meet quality standards"
    again = await api(method, f"/api/admin/models/{model['_id']}/reject",
                      json={"reason": "Still bad"}, token=token)
    assert again.status == 409 and again.json["error_code"] == "INVALID_STATE"


@pytest.mark.gen_test
async def test_reject_approved_model_takes_it_down_and_reapproval_restores(api, services, tokens):
    db = services.db
    model = await make_model(db, status="approved")
    await model_writes.set_featured(db, model["_id"], True)
    before = await counts(db)
    token = await tokens(MODERATOR)
    reply = await api("PUT", f"/api/admin/models/{model['_id']}/reject",
                      json={"reason": "Copyright claim"}, token=token)
    assert reply.status == 200 and reply.json["is_featured"] is False
    assert await counts(db) == (before[0] - 1, before[1] - 1)
    assert (await api("GET", f"/api/models/{model['_id']}")).status == 404
    back = await api("POST", f"/api/admin/models/{model['_id']}/approve", token=token)
    assert back.status == 200 and back.json["rejection_reason"] is None
    assert await counts(db) == before


# --------------------------------------------------------------------------- feature

@pytest.mark.gen_test
async def test_feature_and_unfeature(api, services, tokens):
    db = services.db
    model = await make_model(db, status="approved")
    pending = await make_model(db)
    token = await tokens(MODERATOR)
    path = f"/api/admin/models/{model['_id']}/feature"
    on = await api("PUT", path, json={"is_featured": True}, token=token)
    assert on.status == 200 and on.json["is_featured"] is True
    featured = await api("GET", "/api/models/featured?limit=50")
    assert str(model["_id"]) in [i["id"] for i in featured.json["items"]]
    off = await api("PUT", path, json={"is_featured": False}, token=token)
    assert off.status == 200 and off.json["is_featured"] is False
    refused = await api("PUT", f"/api/admin/models/{pending['_id']}/feature",
                        json={"is_featured": True}, token=token)
    assert refused.status == 409 and refused.json["error_code"] == "INVALID_STATE"
    for bad in ({}, {"is_featured": "perhaps"}, {"is_featured": True, "x": 1}):
        assert (await api("PUT", path, json=bad, token=token)).status == 422
    assert (await api("PUT", path, json={"is_featured": True},
                      token=await tokens(CREATOR))).status == 403
    assert (await api("PUT", "/api/admin/models/bad/feature", json={"is_featured": True},
                      token=token)).status == 404
