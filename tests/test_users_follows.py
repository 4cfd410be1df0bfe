"""Follows: follow/unfollow, exact counters under concurrency, lists, notification."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, BUYER_ID, CREATOR, CREATOR2, CREATOR2_ID, CREATOR_ID, EMAILS


async def counts_match_records(db) -> None:
    """Every user's followers_count/following_count equals its follow documents."""
    async for user in db.users.find({}):
        followers = await db.follows.count_documents({"following_id": user["_id"]})
        following = await db.follows.count_documents({"follower_id": user["_id"]})
        assert user["followers_count"] == followers, user["username"]
        assert user["following_count"] == following, user["username"]


@pytest.mark.gen_test
async def test_follow_and_unfollow(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/users/creator/follow", token=token)
    assert reply.status == 201
    assert reply.json["is_following"] is True and reply.json["followers_count"] == 1
    assert reply.json["user"]["id"] == CREATOR_ID
    profile = await api("GET", f"/api/users/{CREATOR_ID}", token=token)
    assert profile.json["is_following"] is True and profile.json["followers_count"] == 1
    me = await api("GET", "/api/users/me", token=token)
    assert me.json["following_count"] == 1

    reply = await api("DELETE", f"/api/users/{CREATOR_ID}/follow", token=token)
    assert reply.status == 200
    assert reply.json["is_following"] is False and reply.json["followers_count"] == 0
    await counts_match_records(services.db)


@pytest.mark.gen_test
async def test_follow_rules(api, tokens, services):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/users/buyer/follow", token=token)
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_FOLLOW_SELF"
    assert (await api("POST", "/api/users/creator/follow", token=token)).status == 201
    reply = await api("POST", "/api/users/creator/follow", token=token)
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_FOLLOWING"
    reply = await api("DELETE", "/api/users/creator2/follow", token=token)
    assert reply.status == 404 and reply.json["reason"] == "NOT_FOLLOWING"
    for ref in ("nobody-here", "ffffffffffffffffffffffff", "not-an-id!"):
        assert (await api("POST", f"/api/users/{ref}/follow", token=token)).status == 404
        assert (await api("DELETE", f"/api/users/{ref}/follow", token=token)).status == 404
    assert (await api("POST", "/api/users/creator2/follow")).status == 401
    assert (await api("DELETE", "/api/users/creator/follow")).status == 401
    await counts_match_records(services.db)


@pytest.mark.gen_test
async def test_follow_notifies_the_followed_user(api, tokens, services):
    await api("POST", "/api/users/creator/follow", token=await tokens(BUYER))
    note = await services.db.notifications.find_one({"user_id": ObjectId(CREATOR_ID)})
    assert note is not None
    assert note["type"] == "new_follower" and note["action_url"] == "/profile/buyer"
    assert note["data"]["follower_id"] == BUYER_ID


@pytest.mark.gen_test
async def test_concurrent_follows_keep_counts_exact(api, tokens, services):
    followers = [await tokens(e) for e in EMAILS if e != CREATOR]
    replies = await asyncio.gather(*[
        api("POST", f"/api/users/{CREATOR_ID}/follow", token=t) for t in followers])
    assert [r.status for r in replies] == [201] * 5
    # the same follower racing itself: exactly one wins
    token = await tokens(CREATOR)
    replies = await asyncio.gather(*[
        api("POST", "/api/users/buyer/follow", token=token) for _ in range(6)])
    assert sorted(r.status for r in replies) == [201] + [409] * 5
    # unfollows racing follows of other pairs and a repeated unfollow
    admin, moderator, creator2, buyer, _buyer2 = followers
    replies = await asyncio.gather(
        *[api("DELETE", f"/api/users/{CREATOR_ID}/follow", token=t)
          for t in (admin, moderator, creator2)],
        *[api("POST", f"/api/users/{CREATOR2_ID}/follow", token=t) for t in (admin, moderator, buyer)],
        *[api("DELETE", "/api/users/buyer/follow", token=token) for _ in range(3)])
    statuses = [r.status for r in replies]
    assert statuses[:6] == [200] * 3 + [201] * 3
    assert sorted(statuses[6:]) == [200, 404, 404]
    creator = await services.db.users.find_one({"_id": ObjectId(CREATOR_ID)})
    assert creator["followers_count"] == 2
    await counts_match_records(services.db)


@pytest.mark.gen_test
async def test_follower_and_following_lists(api, tokens, services):
    for email in (BUYER, BUYER2, CREATOR2):
        await api("POST", "/api/users/creator/follow", token=await tokens(email))
    await api("POST", "/api/users/buyer/follow", token=await tokens(CREATOR))

    reply = await api("GET", "/api/users/creator/followers?limit=2")
    assert reply.status == 200
    page = reply.json
    assert page["total"] == 3 and page["pages"] == 2 and page["limit"] == 2
    assert [u["username"] for u in page["items"]] == ["creator2", "buyer2"]
    card = page["items"][0]
    assert set(card) == {"id", "username", "full_name", "avatar_url", "is_verified_creator",
                         "followed_at"}
    assert card["followed_at"].endswith("Z")
    reply = await api("GET", "/api/users/creator/followers?limit=2&page=2")
    assert [u["username"] for u in reply.json["items"]] == ["buyer"]

    reply = await api("GET", f"/api/users/{CREATOR_ID}/following")
    assert [u["id"] for u in reply.json["items"]] == [BUYER_ID]

    token = await tokens(CREATOR)
    mine = await api("GET", "/api/users/me/followers", token=token)
    assert mine.json["total"] == 3
    mine = await api("GET", "/api/users/me/following", token=token)
    assert [u["username"] for u in mine.json["items"]] == ["buyer"]


@pytest.mark.gen_test
async def test_follow_lists_bad_input(api, tokens):
    assert (await api("GET", "/api/users/nobody-here/followers")).status == 404
    assert (await api("GET", "/api/users/ffffffffffffffffffffffff/following")).status == 404
    reply = await api("GET", "/api/users/creator/followers?limit=0")
    assert reply.status == 422 and "limit" in reply.json["field_errors"]
    reply = await api("GET", "/api/users/creator/followers?page=abc")
    assert reply.status == 422 and "page" in reply.json["field_errors"]
    reply = await api("GET", "/api/users/me/followers?sort=x&limit=500",      # ignored, clamped
                      token=await tokens(BUYER))
    assert reply.status == 200 and reply.json["limit"] == 100


@pytest.mark.gen_test
async def test_banned_user_cannot_be_followed(api, tokens, services):
    await services.db.users.update_one({"_id": ObjectId(CREATOR2_ID)}, {"$set": {"is_banned": True}})
    token = await tokens(BUYER)
    assert (await api("POST", "/api/users/creator2/follow", token=token)).status == 404
    assert (await api("GET", "/api/users/creator2")).status == 404
    assert await services.db.follows.count_documents({}) == 0
