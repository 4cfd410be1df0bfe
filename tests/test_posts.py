"""Community posts over real HTTP (seed 000 §5, seed 001 §8): the feed with
its filters, posting (members only, attachments checked), editing (author), removal
(author, community moderators, staff), pinning, reactions (one per user, exact counts under
concurrency, type changes), comments with replies and their bound, shares."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import BUYER_ID, GAME_ASSETS, ROBOT

from documents import communities, post_interactions, posts, sessions, users

INSIDERS, VOXEL = "653000000000000000000002", "653000000000000000000003"
WELCOME, MODEL_POST, PRIVATE_POST = ("655000000000000000000001", "655000000000000000000002",
                                     "655000000000000000000007")
MISSING = "655000000000000000000099"


@pytest.fixture
def who(tokens):
    async def sign_in(name: str) -> str:
        return await tokens(f"{name}@hwc3d.com")
    return sign_in


async def new_member(services, name: str, community_id: str = GAME_ASSETS) -> tuple[dict, str]:
    """A fresh account that is an active member of `community_id`, and its access token."""
    db = services.db
    user = await users.insert(db, users.new_user(f"{name}@example.com", name, None))
    await db[communities.MEMBERS].insert_one({
        "community_id": ObjectId(community_id), "user_id": user["_id"], "role": "member",
        "status": "active", "joined_at": user["created_at"]})
    await db[communities.COMMUNITIES].update_one({"_id": ObjectId(community_id)},
                                                 {"$inc": {"member_count": 1}})
    return user, (await sessions.start_session(db, services.settings, user))["access_token"]


async def stored_post(services, post_id: str) -> dict:
    return await services.db[posts.POSTS].find_one({"_id": ObjectId(post_id)})


async def post_count(services, community_id: str = GAME_ASSETS) -> int:
    doc = await services.db[communities.COMMUNITIES].find_one({"_id": ObjectId(community_id)})
    return doc["post_count"]


def counts_match_records(post: dict) -> None:
    """The stored per-type counts equal the `reacted` entries; one entry per user."""
    tally = {t: 0 for t in posts.REACTION_TYPES}
    for entry in post["reacted"]:
        tally[entry["type"]] += 1
    assert post["reactions"] == tally
    assert len({e["user_id"] for e in post["reacted"]}) == len(post["reacted"])


# --------------------------------------------------------------------------- the feed

@pytest.mark.gen_test
async def test_feed_pinned_first_without_comment_lists(api, who):
    reply = await api("GET", f"/api/communities/{GAME_ASSETS}/posts")
    assert reply.status == 200
    items = reply.json["items"]
    assert reply.json["total"] == 6 and items[0]["id"] == WELCOME and items[0]["is_pinned"]
    assert [i["created_at"] for i in items[1:]] == sorted((i["created_at"] for i in items[1:]),
                                                          reverse=True)
    first = items[0]
    assert "comments" not in first and "reacted" not in first and "is_deleted" not in first
    assert first["comment_count"] == 2 and first["reactions"] == {"like": 2, "love": 0, "wow": 0,
                                                                  "fire": 1}
    assert first["reaction_count"] == 3 and first["my_reaction"] is None
    assert first["author"]["username"] == "creator"

    mine = await api("GET", f"/api/communities/{GAME_ASSETS}/posts", token=await who("buyer"))
    assert mine.json["items"][0]["my_reaction"] == "like"


@pytest.mark.gen_test
async def test_feed_filters_and_pagination(api):
    media = await api("GET", f"/api/communities/{GAME_ASSETS}/posts?filter=media")
    assert {p["id"] for p in media.json["items"]} == {MODEL_POST, "655000000000000000000005"}
    popular = (await api("GET", f"/api/communities/{GAME_ASSETS}/posts?filter=popular")).json["items"]
    score = [p["reaction_count"] + p["comment_count"] + p["share_count"] for p in popular[1:]]
    assert popular[0]["id"] == WELCOME and score == sorted(score, reverse=True)
    page = await api("GET", f"/api/communities/{GAME_ASSETS}/posts?limit=4&page=2")
    assert len(page.json["items"]) == 2 and page.json["pages"] == 2
    for bad in ("filter=oldest", "limit=0", "page=0"):
        assert (await api("GET", f"/api/communities/{GAME_ASSETS}/posts?{bad}")).status == 422, bad


@pytest.mark.gen_test
async def test_private_posts_are_for_members(api, who):
    path = f"/api/communities/{INSIDERS}/posts"
    assert (await api("GET", path)).status == 403
    assert (await api("GET", path, token=await who("buyer2"))).status == 403         # pending
    assert (await api("GET", path, token=await who("buyer"))).json["total"] == 2
    assert (await api("GET", path, token=await who("moderator"))).status == 200
    for route in (f"/api/posts/{PRIVATE_POST}", f"/api/posts/{PRIVATE_POST}/comments"):
        assert (await api("GET", route)).status == 403, route
        assert (await api("GET", route, token=await who("buyer"))).status == 200, route
    assert (await api("GET", f"/api/communities/{VOXEL}/posts")).status == 404
    assert (await api("GET", f"/api/communities/{MISSING}/posts")).status == 404


# --------------------------------------------------------------------------- create

@pytest.mark.gen_test
async def test_members_post_with_attachments(api, who, services):
    token = await who("buyer")
    reply = await api("POST", f"/api/communities/{GAME_ASSETS}/posts", token=token, json={
        "content": "  My new sword  ", "image_url": "/files/images/sword.png",
        "model_id": ROBOT})
    assert reply.status == 201, reply.json
    body = reply.json
    assert body["content"] == "My new sword"
    assert body["image_url"] == services.settings.public_url + "/files/images/sword.png"
    assert body["model_id"] == ROBOT and body["model_url"] == f"/models/{ROBOT}"
    assert body["reactions"] == {"like": 0, "love": 0, "wow": 0, "fire": 0}
    assert body["author"]["username"] == "buyer" and body["comment_count"] == 0
    assert await post_count(services) == 7
    feed = await api("GET", f"/api/communities/{GAME_ASSETS}/posts", token=token)
    assert feed.json["items"][1]["id"] == body["id"]                      # after the pinned one

    by_page = await api("POST", f"/api/communities/{GAME_ASSETS}/posts", token=token,
                        json={"content": "See this", "model_url": f"/models/{ROBOT}"})
    assert by_page.status == 201 and by_page.json["model_id"] == ROBOT


@pytest.mark.gen_test
async def test_posting_permissions_and_bad_input(api, who, services):
    path = f"/api/communities/{GAME_ASSETS}/posts"
    assert (await api("POST", path, json={"content": "hi"})).status == 401
    _user, outsider = await new_member(services, "outsider", INSIDERS)
    refused = await api("POST", path, token=outsider, json={"content": "hi"})
    assert refused.status == 403 and refused.json["error_code"] == "NOT_A_MEMBER"
    pending = await api("POST", f"/api/communities/{INSIDERS}/posts", token=await who("buyer2"),
                        json={"content": "let me in"})
    assert pending.status == 403
    token = await who("buyer")
    pending_model = await services.db["models"].find_one({"status": "pending"})
    for bad in ({}, {"content": ""}, {"content": "   "}, {"content": "x" * 10_001},
                {"content": 42}, {"content": "hi", "extra": 1},
                {"content": "hi", "image_url": "https://evil.example/x.png"},
                {"content": "hi", "image_url": "/files/../secrets"},
                {"content": "hi", "model_id": "nope"},
                {"content": "hi", "model_id": str(pending_model["_id"])},
                {"content": "hi", "model_url": "javascript:alert(1)"}):
        reply = await api("POST", path, token=token, json=bad)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", bad
    malformed = await api("POST", path, token=token, body="[1,",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await api("POST", f"/api/communities/{MISSING}/posts", token=token,
                      json={"content": "hi"})).status == 404
    assert await post_count(services) == 6
    assert await services.db[posts.POSTS].count_documents({"community_id": ObjectId(GAME_ASSETS)}) == 6


# --------------------------------------------------------------------------- edit, delete, pin

@pytest.mark.gen_test
async def test_authors_alone_edit(api, who):
    path = f"/api/posts/{WELCOME}"
    other = await api("PUT", path, token=await who("buyer"), json={"content": "hacked"})
    assert other.status == 403 and other.json["error_code"] == "NOT_POST_AUTHOR"
    staff = await api("PUT", path, token=await who("admin"), json={"content": "hacked"})
    assert staff.status == 403
    edited = await api("PUT", path, token=await who("creator"), json={"content": "Welcome!"})
    assert edited.status == 200 and edited.json["content"] == "Welcome!"
    assert edited.json["reactions"]["like"] == 2                    # counts untouched
    assert (await api("GET", path)).json["content"] == "Welcome!"
    for bad in ({}, {"content": ""}, {"is_pinned": True}, {"image_url": "ftp://x"}):
        assert (await api("PUT", path, token=await who("creator"), json=bad)).status == 422, bad
    assert (await api("PUT", "/api/posts/123", token=await who("creator"),
                      json={"content": "x"})).status == 404


@pytest.mark.gen_test
async def test_remove_by_author_moderator_or_staff(api, who, services):
    buyer_post = "655000000000000000000004"                          # by buyer
    refused = await api("DELETE", f"/api/posts/{buyer_post}", token=await who("buyer2"))
    assert refused.status == 403
    assert (await api("DELETE", f"/api/posts/{buyer_post}")).status == 401
    assert (await api("DELETE", f"/api/posts/{buyer_post}", token=await who("buyer"))).status == 204
    assert (await api("GET", f"/api/posts/{buyer_post}")).status == 404
    assert (await api("DELETE", f"/api/posts/{buyer_post}", token=await who("buyer"))).status == 404
    assert (await stored_post(services, buyer_post))["is_deleted"] is True
    # community moderator (creator2) and platform staff
    assert (await api("DELETE", f"/api/posts/{WELCOME}", token=await who("creator2"))).status == 204
    assert (await api("DELETE", f"/api/posts/{MODEL_POST}", token=await who("moderator"))).status == 204
    assert await post_count(services) == 3
    feed = await api("GET", f"/api/communities/{GAME_ASSETS}/posts")
    assert feed.json["total"] == 3 and WELCOME not in {p["id"] for p in feed.json["items"]}
    for action in (("POST", "react", {"reaction_type": "like"}), ("GET", "comments", None),
                   ("POST", "share", None)):
        reply = await api(action[0], f"/api/posts/{WELCOME}/{action[1]}", json=action[2],
                          token=await who("buyer"))
        assert reply.status == 404, action


@pytest.mark.gen_test
async def test_pin_by_community_moderators_and_staff(api, who):
    path = f"/api/posts/{MODEL_POST}/pin"
    assert (await api("PUT", path, token=await who("buyer"), json={})).status == 403
    pinned = await api("PUT", path, token=await who("creator2"), json={})
    assert pinned.status == 200 and pinned.json["is_pinned"] is True
    feed = (await api("GET", f"/api/communities/{GAME_ASSETS}/posts")).json["items"]
    assert {feed[0]["id"], feed[1]["id"]} == {WELCOME, MODEL_POST}
    unpinned = await api("PUT", path, token=await who("moderator"), json={"is_pinned": False})
    assert unpinned.status == 200 and unpinned.json["is_pinned"] is False
    assert (await api("PUT", path, token=await who("creator2"), json={"is_pinned": "maybe"})).status == 422


# --------------------------------------------------------------------------- reactions

@pytest.mark.gen_test
async def test_react_change_and_remove(api, who, services):
    token = await who("buyer")                                      # has "like" on WELCOME
    path = f"/api/posts/{WELCOME}/react"
    same = await api("POST", path, token=token, json={"reaction_type": "like"})
    assert same.status == 200 and same.json["reactions"]["like"] == 2
    changed = await api("POST", path, token=token, json={"reaction_type": "fire"})
    assert changed.status == 200
    assert changed.json["my_reaction"] == "fire" and changed.json["previous_type"] == "like"
    assert changed.json["reactions"] == {"like": 1, "love": 0, "wow": 0, "fire": 2}
    removed = await api("DELETE", path, token=token)
    assert removed.status == 200 and removed.json["my_reaction"] is None
    assert removed.json["reactions"]["fire"] == 1 and removed.json["reaction_count"] == 2
    again = await api("DELETE", path, token=token)
    assert again.status == 404 and again.json["reason"] == "REACTION_NOT_FOUND"
    added = await api("POST", path, token=token, json={"reaction_type": "wow"})
    assert added.json["reactions"]["wow"] == 1 and added.json["previous_type"] is None
    counts_match_records(await stored_post(services, WELCOME))

    for bad in ({"reaction_type": "angry"}, {}, {"reaction_type": 1},
                {"reaction_type": "like", "x": 1}):
        reply = await api("POST", path, token=token, json=bad)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", bad
    assert (await api("POST", path, json={"reaction_type": "like"})).status == 401
    assert (await api("POST", "/api/posts/nope/react", token=token,
                      json={"reaction_type": "like"})).status == 404
    _u, outsider = await new_member(services, "stranger", INSIDERS)
    assert (await api("POST", path, token=outsider, json={"reaction_type": "like"})).status == 403
    counts_match_records(await stored_post(services, WELCOME))


@pytest.mark.gen_test(timeout=60)
async def test_reaction_counts_stay_exact_under_concurrency(api, services):
    people = [await new_member(services, f"fan{i}") for i in range(12)]
    path = f"/api/posts/{MODEL_POST}/react"
    kinds = posts.REACTION_TYPES

    # everyone reacts twice at once (same type): one entry each
    replies = await asyncio.gather(*(api("POST", path, token=t, json={"reaction_type": "like"})
                                     for _u, t in people for _twice in (1, 2)))
    assert all(r.status == 200 for r in replies)
    post = await stored_post(services, MODEL_POST)
    counts_match_records(post)
    assert post["reactions"]["like"] == 1 + 12

    # everyone changes type several times at once, racing with themselves
    replies = await asyncio.gather(*(
        api("POST", path, token=t, json={"reaction_type": kinds[(i + step) % 4]})
        for i, (_u, t) in enumerate(people) for step in range(4)))
    assert all(r.status == 200 for r in replies), [r.json for r in replies if r.status != 200]
    post = await stored_post(services, MODEL_POST)
    counts_match_records(post)
    assert len(post["reacted"]) == 4 + 12

    # half remove while the other half change: still exact
    replies = await asyncio.gather(
        *(api("DELETE", path, token=t) for _u, t in people[:6]),
        *(api("POST", path, token=t, json={"reaction_type": "wow"}) for _u, t in people[6:]))
    assert all(r.status == 200 for r in replies)
    post = await stored_post(services, MODEL_POST)
    counts_match_records(post)
    assert len(post["reacted"]) == 4 + 6
    feed_post = (await api("GET", f"/api/posts/{MODEL_POST}")).json
    assert feed_post["reactions"] == post["reactions"]


async def fill(services, post_id: str, field: str, up_to: int) -> None:
    """Fill the post's embedded `field` (reacted or comments) with stand-in entries up to
    `up_to`, keeping its counter in step, as if many users had been there."""
    post = await stored_post(services, post_id)
    missing = up_to - len(post[field])
    if field == "reacted":
        entries = [{"user_id": ObjectId(), "type": "like"} for _ in range(missing)]
        change = {"$push": {"reacted": {"$each": entries}}, "$inc": {"reactions.like": missing}}
    else:
        entries = [{"_id": ObjectId(), "author_id": ObjectId(BUYER_ID), "content": "filler",
                    "parent_id": None, "created_at": post["created_at"], "is_deleted": False}
                   for _ in range(missing)]
        change = {"$push": {"comments": {"$each": entries}}, "$inc": {"comment_count": missing}}
    await services.db[posts.POSTS].update_one({"_id": post["_id"]}, change)


@pytest.mark.gen_test(timeout=60)
async def test_reactions_past_the_bound_are_refused(api, services):
    await fill(services, WELCOME, "reacted", post_interactions.MAX_REACTIONS - 2)
    people = [await new_member(services, f"late{i}") for i in range(3)]
    path = f"/api/posts/{WELCOME}/react"
    replies = [await api("POST", path, token=t, json={"reaction_type": "love"}) for _u, t in people]
    assert [r.status for r in replies] == [200, 200, 409]
    assert replies[2].json["error_code"] == "POST_REACTIONS_FULL"
    moved = await api("POST", path, token=people[0][1], json={"reaction_type": "wow"})
    assert moved.status == 200                                    # changing still works
    post = await stored_post(services, WELCOME)
    assert len(post["reacted"]) == post_interactions.MAX_REACTIONS
    counts_match_records(post)


# --------------------------------------------------------------------------- comments

@pytest.mark.gen_test
async def test_comments_with_replies(api, who, services):
    token = await who("buyer2")
    path = f"/api/posts/{MODEL_POST}/comments"
    listed = await api("GET", path)
    assert listed.status == 200 and listed.json["total"] == 3
    top = await api("POST", path, token=token, json={"content": "  Lovely topology  "})
    assert top.status == 201, top.json
    assert top.json["content"] == "Lovely topology" and top.json["parent_id"] is None
    assert top.json["author"]["username"] == "buyer2"
    reply = await api("POST", path, token=await who("creator"),
                      json={"content": "Thanks!", "parent_id": top.json["id"]})
    assert reply.status == 201 and reply.json["parent_id"] == top.json["id"]
    listed = (await api("GET", path)).json
    assert listed["total"] == 5
    assert [c["id"] for c in listed["items"][-2:]] == [top.json["id"], reply.json["id"]]
    assert listed["items"][-2]["reply_count"] == 1
    post = await stored_post(services, MODEL_POST)
    assert post["comment_count"] == 5 == len([c for c in post["comments"] if not c["is_deleted"]])
    page = await api("GET", f"{path}?limit=2&page=3")
    assert page.json["pages"] == 3 and len(page.json["items"]) == 1

    for bad in ({}, {"content": ""}, {"content": "  "}, {"content": "x" * 2001},
                {"content": "ok", "post_id": MODEL_POST}, {"content": ["x"]}):
        assert (await api("POST", path, token=token, json=bad)).status == 422, bad
    for parent in ("nope", MISSING):
        orphan = await api("POST", path, token=token, json={"content": "hi", "parent_id": parent})
        assert orphan.status == 404, parent
    assert (await api("POST", path, json={"content": "hi"})).status == 401
    _u, outsider = await new_member(services, "nosy", INSIDERS)
    assert (await api("POST", path, token=outsider, json={"content": "hi"})).status == 403
    assert (await api("POST", f"/api/posts/{MISSING}/comments", token=token,
                      json={"content": "hi"})).status == 404
    assert (await stored_post(services, MODEL_POST))["comment_count"] == 5


@pytest.mark.gen_test
async def test_comment_thread_bound_and_concurrent_comments(api, services):
    await fill(services, WELCOME, "comments", post_interactions.MAX_COMMENTS - 6)
    people = [await new_member(services, f"talker{i}") for i in range(10)]
    path = f"/api/posts/{WELCOME}/comments"
    replies = await asyncio.gather(*(api("POST", path, token=t, json={"content": f"hi {i}"})
                                     for i, (_u, t) in enumerate(people)))
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] * 6 + [409] * 4
    assert {r.json["error_code"] for r in replies if r.status == 409} == {"POST_THREAD_FULL"}
    post = await stored_post(services, WELCOME)
    assert len(post["comments"]) == post_interactions.MAX_COMMENTS == post["comment_count"]


# --------------------------------------------------------------------------- shares

@pytest.mark.gen_test
async def test_share_counts(api, who, services):
    token = await who("buyer")
    replies = await asyncio.gather(*(api("POST", f"/api/posts/{WELCOME}/share", token=token)
                                     for _ in range(5)))
    assert all(r.status == 200 for r in replies)
    assert sorted(r.json["share_count"] for r in replies) == [2, 3, 4, 5, 6]
    assert replies[0].json["share_url"].startswith(f"/community/{GAME_ASSETS}")
    assert (await stored_post(services, WELCOME))["share_count"] == 6
    assert (await api("POST", f"/api/posts/{WELCOME}/share")).status == 401
    assert (await api("POST", f"/api/posts/{PRIVATE_POST}/share",
                      token=await who("buyer2"))).status == 403
    assert (await api("POST", "/api/posts/xyz/share", token=token)).status == 404
