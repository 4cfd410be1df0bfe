"""Model engagement over real HTTP (seed 000 §3, seed 001 §3–§5): likes with exact counters
under concurrency, threaded comments, views once per window, shares, download-specs, and the
notifications the creator receives."""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import (
    BUYER,
    BUYER2,
    BUYER2_ID,
    BUYER_ID,
    CREATOR,
    CREATOR2,
    CREATOR2_ID,
    CREATOR_ID,
    PENDING_OF_CREATOR,
    ROBOT,
    SNOWMAN,
)

from documents import sessions, users

REJECTED = "652000000000000000000043"     # rejected + unpublished, by creator2
UNKNOWN = "ffffffffffffffffffffffff"


async def model_doc(services, model_id: str) -> dict:
    return await services.db.models.find_one({"_id": ObjectId(model_id)})


async def extra_users(services, count: int) -> list[str]:
    """Access tokens of `count` new buyer accounts."""
    out = []
    for i in range(count):
        user = await users.insert(services.db, users.new_user(
            f"fan{i}@example.com", f"fan{i}", None, is_verified=True))
        pair = await sessions.start_session(services.db, services.settings, user)
        out.append(pair["access_token"])
    return out


# --------------------------------------------------------------------------- likes

@pytest.mark.gen_test
async def test_like_and_unlike(api, tokens, services):
    token = await tokens(BUYER)
    before = (await model_doc(services, ROBOT))["likes"]
    reply = await api("POST", f"/api/models/{ROBOT}/like", token=token)
    assert reply.status == 201
    assert reply.json == {"model_id": ROBOT, "liked": True, "likes": before + 1}
    assert (await model_doc(services, ROBOT))["likes"] == before + 1
    assert await services.db.model_likes.count_documents(
        {"user_id": ObjectId(BUYER_ID), "model_id": ObjectId(ROBOT)}) == 1

    reply = await api("POST", f"/api/models/{ROBOT}/like", token=token)
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_LIKED"
    assert (await model_doc(services, ROBOT))["likes"] == before + 1

    reply = await api("DELETE", f"/api/models/{ROBOT}/like", token=token)
    assert reply.status == 200
    assert reply.json == {"model_id": ROBOT, "liked": False, "likes": before}
    reply = await api("DELETE", f"/api/models/{ROBOT}/like", token=token)
    assert reply.status == 404 and reply.json["reason"] == "NOT_LIKED"
    assert (await model_doc(services, ROBOT))["likes"] == before
    assert await services.db.model_likes.count_documents({}) == 0


@pytest.mark.gen_test
async def test_like_notifies_the_creator_but_not_for_own_models(api, tokens, services):
    await api("POST", f"/api/models/{ROBOT}/like", token=await tokens(BUYER))
    creator_token = await tokens(CREATOR)
    reply = await api("GET", "/api/notifications", token=creator_token)
    assert reply.status == 200
    likes = [n for n in reply.json["items"] if n["type"] == "model_liked"]
    assert len(likes) == 1
    assert likes[0]["action_url"] == f"/model/{ROBOT}"
    assert likes[0]["data"]["model_id"] == ROBOT
    assert likes[0]["data"]["user"]["id"] == BUYER_ID
    assert "Low-Poly Robot" in likes[0]["message"]

    assert (await api("POST", f"/api/models/{ROBOT}/like", token=creator_token)).status == 201
    assert await services.db.notifications.count_documents(
        {"user_id": ObjectId(CREATOR_ID), "type": "model_liked"}) == 1


@pytest.mark.gen_test
async def test_like_auth_and_visibility(api, tokens, services):
    buyer = await tokens(BUYER)
    for method in ("POST", "DELETE"):
        reply = await api(method, f"/api/models/{ROBOT}/like")
        assert reply.status == 401 and reply.json["error_code"] == "UNAUTHORIZED"
        for ref in (UNKNOWN, "not-an-id", PENDING_OF_CREATOR, REJECTED):
            reply = await api(method, f"/api/models/{ref}/like", token=buyer)
            assert reply.status == 404, (method, ref)
            assert reply.json["error_code"] in ("NOT_FOUND", "MODEL_NOT_FOUND")
    # the creator sees (and may like) their own pending model
    creator = await tokens(CREATOR)
    assert (await api("POST", f"/api/models/{PENDING_OF_CREATOR}/like", token=creator)).status == 201
    assert await services.db.model_likes.count_documents({"user_id": ObjectId(BUYER_ID)}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_likes_keep_the_counter_exact(api, tokens, services):
    fans = await extra_users(services, 24)
    before = (await model_doc(services, SNOWMAN))["likes"]
    replies = await asyncio.gather(*[
        api("POST", f"/api/models/{SNOWMAN}/like", token=t) for t in fans])
    assert [r.status for r in replies] == [201] * len(fans)
    # one user racing itself: exactly one like is stored
    buyer = await tokens(BUYER)
    replies = await asyncio.gather(*[
        api("POST", f"/api/models/{SNOWMAN}/like", token=buyer) for _ in range(8)])
    assert sorted(r.status for r in replies) == [201] + [409] * 7
    records = await services.db.model_likes.count_documents({"model_id": ObjectId(SNOWMAN)})
    assert records == len(fans) + 1
    assert (await model_doc(services, SNOWMAN))["likes"] == before + records

    # half unlike while the other half like again (409) — still exact
    calls = [api("DELETE", f"/api/models/{SNOWMAN}/like", token=t) for t in fans[:12]]
    calls += [api("POST", f"/api/models/{SNOWMAN}/like", token=t) for t in fans[12:]]
    replies = await asyncio.gather(*calls)
    assert [r.status for r in replies] == [200] * 12 + [409] * 12
    records = await services.db.model_likes.count_documents({"model_id": ObjectId(SNOWMAN)})
    assert records == 13
    assert (await model_doc(services, SNOWMAN))["likes"] == before + records
    assert await services.db.notifications.count_documents(
        {"user_id": ObjectId(CREATOR2_ID), "type": "model_liked"}) == len(fans) + 1


# --------------------------------------------------------------------------- comments

@pytest.mark.gen_test
async def test_threaded_comments(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    first = await api("POST", f"/api/models/{ROBOT}/comments", token=buyer,
                      json={"content": "  Amazing work!  ", "parent_id": None})
    assert first.status == 201
    assert first.json["content"] == "Amazing work!"
    assert first.json["parent_id"] is None and first.json["replies"] == []
    assert first.json["author"]["id"] == BUYER_ID and first.json["model_id"] == ROBOT
    second = await api("POST", f"/api/models/{ROBOT}/comment", token=buyer2,
                       json={"content": "Love the colours"})
    assert second.status == 201
    reply = await api("POST", f"/api/models/{ROBOT}/comments", token=buyer2,
                      json={"content": "Agreed", "parent_id": first.json["id"]})
    assert reply.status == 201 and reply.json["parent_id"] == first.json["id"]
    # a reply to a reply joins the thread of the top-level comment
    nested = await api("POST", f"/api/models/{ROBOT}/comments", token=buyer,
                       json={"content": "Thanks!", "parent_id": reply.json["id"]})
    assert nested.status == 201 and nested.json["parent_id"] == first.json["id"]

    listing = await api("GET", f"/api/models/{ROBOT}/comments")
    assert listing.status == 200
    body = listing.json
    assert body["total"] == 2 and body["page"] == 1 and body["pages"] == 1
    assert [c["content"] for c in body["items"]] == ["Love the colours", "Amazing work!"]
    thread = body["items"][1]
    assert thread["reply_count"] == 2
    assert [r["content"] for r in thread["replies"]] == ["Agreed", "Thanks!"]
    assert thread["replies"][0]["author"]["id"] == BUYER2_ID
    assert (await model_doc(services, ROBOT))["comment_count"] == 4

    page = await api("GET", f"/api/models/{ROBOT}/comments?page=2&limit=1")
    assert page.json["pages"] == 2 and [c["content"] for c in page.json["items"]] == ["Amazing work!"]


@pytest.mark.gen_test
async def test_comment_notifies_the_creator(api, tokens, services):
    reply = await api("POST", f"/api/models/{SNOWMAN}/comments", token=await tokens(BUYER),
                      json={"content": "Nice"})
    note = await services.db.notifications.find_one({"user_id": ObjectId(CREATOR2_ID)})
    assert note["type"] == "comment_received" and note["action_url"] == f"/model/{SNOWMAN}"
    assert note["data"]["comment_id"] == reply.json["id"]
    await api("POST", f"/api/models/{SNOWMAN}/comments", token=await tokens(CREATOR2),
              json={"content": "Thank you"})
    assert await services.db.notifications.count_documents({"user_id": ObjectId(CREATOR2_ID)}) == 1


@pytest.mark.gen_test
async def test_comment_bad_input_writes_nothing(api, tokens, services):
    buyer = await tokens(BUYER)
    other = await api("POST", f"/api/models/{SNOWMAN}/comments", token=buyer,
                      json={"content": "on another model"})
    url = f"/api/models/{ROBOT}/comments"
    cases = [
        ({"content": ""}, "content"), ({"content": "   "}, "content"),
        ({"content": "x" * 2001}, "content"), ({}, "content"), ({"content": 42}, "content"),
        ({"content": "hi", "rating": 5}, "rating"),
        ({"content": "hi", "parent_id": UNKNOWN}, "parent_id"),
        ({"content": "hi", "parent_id": "nope"}, "parent_id"),
        ({"content": "hi", "parent_id": other.json["id"]}, "parent_id"),
    ]
    for payload, field in cases:
        reply = await api("POST", url, token=buyer, json=payload)
        assert reply.status == 422, payload
        assert reply.json["error_code"] == "VALIDATION_ERROR" and field in reply.json["field_errors"]
    reply = await api("POST", url, token=buyer, body=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    assert (await api("POST", url, json={"content": "hi"})).status == 401
    for ref in (UNKNOWN, "bad-id", PENDING_OF_CREATOR):
        assert (await api("POST", f"/api/models/{ref}/comments", token=buyer,
                          json={"content": "hi"})).status == 404
        assert (await api("GET", f"/api/models/{ref}/comments")).status == 404
    assert (await api("GET", f"{url}?limit=0")).status == 422
    assert await services.db.model_comments.count_documents({"model_id": ObjectId(ROBOT)}) == 0
    assert (await model_doc(services, ROBOT))["comment_count"] == 0
    # exactly 2000 characters is fine
    assert (await api("POST", url, token=buyer, json={"content": "y" * 2000})).status == 201


# --------------------------------------------------------------------------- views

@pytest.mark.gen_test
async def test_view_counts_once_per_viewer_per_window(api, tokens, services):
    before = (await model_doc(services, ROBOT))["views"]
    first = await api("POST", f"/api/models/{ROBOT}/view")
    assert first.status == 200 and first.json == {"views": before + 1, "counted": True}
    again = await api("POST", f"/api/models/{ROBOT}/view")
    assert again.json == {"views": before + 1, "counted": False}
    buyer = await tokens(BUYER)
    assert (await api("POST", f"/api/models/{ROBOT}/view", token=buyer)).json["counted"] is True
    assert (await api("POST", f"/api/models/{ROBOT}/view", token=buyer)).json["counted"] is False
    assert (await model_doc(services, ROBOT))["views"] == before + 2
    stored = await services.db.model_views.find({"model_id": ObjectId(ROBOT)}).to_list(10)
    assert len(stored) == 2
    keys = {v["viewer_key"] for v in stored}
    assert f"u:{BUYER_ID}" in keys and not any("127.0.0.1" in k for k in keys)

    # once the window has passed, the same viewer counts again
    for view in stored:
        await services.db.model_views.update_one(
            {"_id": view["_id"]}, {"$set": {"window_start": view["window_start"] - timedelta(minutes=30)}})
    reply = await api("POST", f"/api/models/{ROBOT}/view", token=buyer)
    assert reply.json == {"views": before + 3, "counted": True}


@pytest.mark.gen_test
async def test_concurrent_views_count_once(api, tokens, services):
    before = (await model_doc(services, SNOWMAN))["views"]
    replies = await asyncio.gather(*[api("POST", f"/api/models/{SNOWMAN}/view") for _ in range(10)])
    assert sorted(r.json["counted"] for r in replies) == [False] * 9 + [True]
    assert (await model_doc(services, SNOWMAN))["views"] == before + 1


@pytest.mark.gen_test
async def test_view_of_hidden_models(api, tokens):
    assert (await api("POST", f"/api/models/{PENDING_OF_CREATOR}/view")).status == 404
    assert (await api("POST", f"/api/models/{UNKNOWN}/view")).status == 404
    assert (await api("POST", "/api/models/zzz/view")).status == 404
    creator = await tokens(CREATOR)
    assert (await api("POST", f"/api/models/{PENDING_OF_CREATOR}/view", token=creator)).status == 200


# --------------------------------------------------------------------------- shares, specs

@pytest.mark.gen_test
async def test_share(api, tokens, services):
    reply = await api("POST", f"/api/models/{ROBOT}/share")
    assert reply.status == 200
    assert reply.json["share_url"] == f"{services.settings.public_url}/view/{ROBOT}"
    assert reply.json["shares"] == 1
    reply = await api("POST", f"/api/models/{ROBOT}/share", token=await tokens(BUYER))
    assert reply.json["shares"] == 2
    assert (await model_doc(services, ROBOT))["shares"] == 2
    assert (await api("POST", f"/api/models/{REJECTED}/share")).status == 404
    assert (await api("POST", "/api/models/nope/share")).status == 404


@pytest.mark.gen_test
async def test_download_specs(api, tokens, services):
    reply = await api("POST", f"/api/models/{ROBOT}/download-specs")
    assert reply.status == 200
    assert reply.headers["Content-Disposition"] == 'attachment; filename="low-poly-robot-specs.json"'
    assert reply.headers["Content-Type"].startswith("application/json")
    specs = json.loads(reply.body)
    model = await model_doc(services, ROBOT)
    assert specs["model_id"] == ROBOT and specs["title"] == "Low-Poly Robot"
    for key in ("poly_count", "vertex_count", "file_size", "file_format", "category",
                "has_animations", "has_rigging", "has_materials", "has_textures",
                "texture_resolution"):
        assert specs[key] == model[key], key
    assert specs["tags"] == model["tags"]
    assert specs["creator"]["id"] == CREATOR_ID
    assert "bounds" in specs and "file_key" not in reply.body.decode()

    assert (await api("POST", f"/api/models/{PENDING_OF_CREATOR}/download-specs")).status == 404
    creator = await tokens(CREATOR)
    reply = await api("POST", f"/api/models/{PENDING_OF_CREATOR}/download-specs", token=creator)
    assert reply.status == 200 and "crystal-cluster-specs.json" in reply.headers["Content-Disposition"]
    assert (await api("POST", f"/api/models/{UNKNOWN}/download-specs")).status == 404



@pytest.mark.gen_test
async def test_cleanup_of_a_deleted_models_records(api, tokens, services):
    from documents import collections as collections_db
    from documents import engagement

    buyer = await tokens(BUYER)
    await api("POST", f"/api/models/{ROBOT}/like", token=buyer)
    await api("POST", f"/api/models/{ROBOT}/comments", token=buyer, json={"content": "hi"})
    await api("POST", f"/api/models/{ROBOT}/view", token=buyer)
    made = await api("POST", "/api/collections", token=buyer, json={"name": "Keep"})
    for model_id in (ROBOT, SNOWMAN):
        await api("POST", f"/api/collections/{made.json['id']}/add-model", token=buyer,
                  json={"model_id": model_id})
    assert (await api("DELETE", f"/api/models/{ROBOT}", token=await tokens(CREATOR))
            ).status == 204
    # DELETE took the records with it: nothing is left for a second clean-up to find.
    assert await engagement.remove_for_model(services.db, ObjectId(ROBOT)) == []
    assert await collections_db.remove_model_everywhere(services.db, ObjectId(ROBOT)) == 0
    for name in ("model_likes", "model_comments", "model_views", "model_media"):
        assert await services.db[name].count_documents({"model_id": ObjectId(ROBOT)}) == 0
    doc = await services.db.collections.find_one({})
    assert doc["model_ids"] == [ObjectId(SNOWMAN)] and doc["model_count"] == 1
