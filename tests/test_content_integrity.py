"""Integrity of community and catalog content across routes.

- A removed post is gone for every route that touches it; nothing is half-written by a
  reply to another post's comment or an unknown reaction type.
- Counters stay equal to their records under concurrency: model comments, post shares,
  post comments.
- Draft blog posts and private collections are hidden on every sub-route.
"""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import GAME_ASSETS, ROBOT

from documents import communities, posts, sessions, users

WELCOME, MODEL_POST = "655000000000000000000001", "655000000000000000000002"


@pytest.fixture
def who(tokens):
    async def sign_in(name: str) -> str:
        return await tokens(f"{name}@hwc3d.com")
    return sign_in


async def new_people(services, prefix: str, count: int, community_id: str | None = None):
    """Access tokens of `count` fresh accounts (active members of `community_id` if given)."""
    out = []
    for i in range(count):
        user = await users.insert(services.db, users.new_user(
            f"{prefix}{i}@example.com", f"{prefix}{i}", None, is_verified=True))
        if community_id:
            await services.db[communities.MEMBERS].insert_one({
                "community_id": ObjectId(community_id), "user_id": user["_id"],
                "role": "member", "status": "active", "joined_at": user["created_at"]})
            await services.db[communities.COMMUNITIES].update_one(
                {"_id": ObjectId(community_id)}, {"$inc": {"member_count": 1}})
        out.append((await sessions.start_session(services.db, services.settings,
                                                 user))["access_token"])
    return out


async def post_doc(services, post_id: str) -> dict:
    return await services.db[posts.POSTS].find_one({"_id": ObjectId(post_id)})


# --------------------------------------------------------------------------- posts

@pytest.mark.gen_test
async def test_a_removed_post_is_gone_for_every_route(api, who, services):
    author = (await new_people(services, "poster", 1, GAME_ASSETS))[0]
    made = await api("POST", f"/api/communities/{GAME_ASSETS}/posts", token=author,
                     json={"content": "Soon gone"})
    assert made.status == 201, made.json
    post_id = made.json["id"]
    before = (await services.db.communities.find_one({"_id": ObjectId(GAME_ASSETS)}))["post_count"]
    assert (await api("DELETE", f"/api/posts/{post_id}", token=author)).status == 204
    after = await services.db.communities.find_one({"_id": ObjectId(GAME_ASSETS)})
    assert after["post_count"] == before - 1
    staff = await who("admin")
    for token in (author, staff):
        for method, path, body in (
                ("PUT", f"/api/posts/{post_id}", {"content": "back?"}),
                ("POST", f"/api/posts/{post_id}/react", {"reaction_type": "like"}),
                ("POST", f"/api/posts/{post_id}/comments", {"content": "hello"}),
                ("GET", f"/api/posts/{post_id}/comments", None),
                ("POST", f"/api/posts/{post_id}/share", None),
                ("PUT", f"/api/posts/{post_id}/pin", {"is_pinned": True}),
                ("POST", f"/api/posts/{post_id}/report", {"reason": "Other"}),
                ("DELETE", f"/api/posts/{post_id}", None)):
            reply = await api(method, path, json=body, token=token)
            assert reply.status == 404, (method, path, reply.status, reply.json)
            assert reply.json["error_code"] and reply.json["detail"]
    feed = await api("GET", f"/api/communities/{GAME_ASSETS}/posts?limit=100", token=author)
    assert post_id not in {p["id"] for p in feed.json["items"]}
    stored = await post_doc(services, post_id)
    assert stored["is_deleted"] and stored["share_count"] == 0 and stored["comments"] == []
    assert (await services.db.communities.find_one({"_id": ObjectId(GAME_ASSETS)}))["post_count"] \
        == before - 1


@pytest.mark.gen_test
async def test_bad_replies_and_reactions_write_nothing(api, services):
    member = (await new_people(services, "critic", 1, GAME_ASSETS))[0]
    first = await api("POST", f"/api/posts/{MODEL_POST}/comments", token=member,
                      json={"content": "On the other post"})
    assert first.status == 201, first.json
    before = await post_doc(services, WELCOME)
    cases = [
        ("POST", "comments", {"content": "reply", "parent_id": first.json["id"]}),
        ("POST", "comments", {"content": "reply", "parent_id": "not-an-id"}),
        ("POST", "comments", {"content": "   "}),
        ("POST", "comments", {"content": "x" * 2001}),
        ("POST", "comments", {"content": 7}),
        ("POST", "react", {"reaction_type": "angry"}),
        ("POST", "react", {"reaction_type": "like", "extra": 1}),
        ("POST", "react", {}),
    ]
    for method, verb, body in cases:
        reply = await api(method, f"/api/posts/{WELCOME}/{verb}", json=body, token=member)
        assert 400 <= reply.status < 500, (body, reply.status)
        assert reply.json["error_code"] and reply.json["detail"], body
    after = await post_doc(services, WELCOME)
    for key in ("comments", "comment_count", "reactions", "reacted", "updated_at"):
        assert after[key] == before[key], key


@pytest.mark.gen_test
async def test_post_shares_and_comments_stay_exact_at_once(api, services):
    people = await new_people(services, "crowd", 10, GAME_ASSETS)
    before = await post_doc(services, WELCOME)
    replies = await asyncio.gather(
        *(api("POST", f"/api/posts/{WELCOME}/share", token=t) for t in people),
        *(api("POST", f"/api/posts/{WELCOME}/comments", token=t, json={"content": "me too"})
          for t in people))
    assert sorted(r.status for r in replies) == [200] * 10 + [201] * 10, \
        [(r.status, r.json) for r in replies if r.status >= 300]
    after = await post_doc(services, WELCOME)
    assert after["share_count"] == before["share_count"] + 10
    visible = [c for c in after["comments"] if not c.get("is_deleted")]
    assert after["comment_count"] == len(visible) == before["comment_count"] + 10


# --------------------------------------------------------------------------- model engagement

@pytest.mark.gen_test
async def test_model_comments_through_both_route_forms_stay_exact_at_once(api, services):
    people = await new_people(services, "fan", 8)
    before = (await services.db.models.find_one({"_id": ObjectId(ROBOT)}))["comment_count"]
    replies = await asyncio.gather(*(
        api("POST", f"/api/models/{ROBOT}/{'comment' if i % 2 else 'comments'}", token=t,
            json={"content": f"Nice {i}"}) for i, t in enumerate(people)))
    assert [r.status for r in replies] == [201] * 8
    model = await services.db.models.find_one({"_id": ObjectId(ROBOT)})
    assert model["comment_count"] == before + 8
    listed = await api("GET", f"/api/models/{ROBOT}/comments?limit=100")
    assert listed.json["total"] >= 8


# --------------------------------------------------------------------------- hidden things

@pytest.mark.gen_test
async def test_a_draft_blog_post_is_hidden_on_every_route(api, who):
    admin = await who("admin")
    draft = await api("POST", "/api/admin/blog/posts", token=admin,
                      json={"title": "Secret plans", "content": "word " * 50,
                            "category": "news"})
    assert draft.status == 201 and draft.json["status"] == "draft", draft.json
    ref = draft.json["id"]
    buyer = await who("buyer")
    for token in (None, buyer):
        for method, path, body in (
                ("GET", f"/api/blog/posts/{ref}", None),
                ("GET", f"/api/blog/posts/{draft.json['slug']}", None),
                ("POST", f"/api/blog/posts/{ref}/like", None),
                ("GET", f"/api/blog/posts/{ref}/comments", None),
                ("POST", f"/api/blog/posts/{ref}/comments", {"content": "hi"}),
                ("POST", f"/api/blog/posts/{ref}/share", None)):
            reply = await api(method, path, json=body, token=token)
            assert reply.status in ((401, 404) if token is None else (404,)), \
                (method, path, token is None, reply.status)
        listed = await api("GET", "/api/blog/posts?search=Secret", token=token)
        assert listed.json["total"] == 0
        found = await api("GET", "/api/search?type=models&q=Secret", token=token)
        assert found.status == 200
    assert (await api("GET", f"/api/blog/posts/{ref}", token=admin)).status == 200


@pytest.mark.gen_test
async def test_a_private_collection_is_hidden_on_every_route(api, who):
    owner, other = await who("creator"), await who("buyer")
    made = await api("POST", "/api/collections", token=owner,
                     json={"name": "Secret stash", "is_public": False})
    assert made.status == 201, made.json
    cid = made.json["id"]
    assert (await api("POST", f"/api/collections/{cid}/add-model", token=owner,
                      json={"model_id": ROBOT})).status in (200, 201)
    for token in (None, other):
        for method, path, body in (
                ("GET", f"/api/collections/{cid}", None),
                ("GET", f"/api/collections/{cid}/models", None),
                ("POST", f"/api/collections/{cid}/follow", None),
                ("PUT", f"/api/collections/{cid}", {"name": "Mine now"}),
                ("POST", f"/api/collections/{cid}/add-model", {"model_id": ROBOT}),
                ("DELETE", f"/api/collections/{cid}/remove-model/{ROBOT}", None),
                ("DELETE", f"/api/collections/{cid}", None)):
            reply = await api(method, path, json=body, token=token)
            assert reply.status in ((401, 404) if token is None else (404,)), \
                (method, path, token is None, reply.status)
        listed = await api("GET", "/api/collections?search=Secret", token=token)
        assert cid not in {c["id"] for c in listed.json["items"]}
    mine = await api("GET", f"/api/collections/{cid}/models", token=owner)
    assert mine.status == 200 and [m["id"] for m in mine.json["items"]] == [ROBOT]
