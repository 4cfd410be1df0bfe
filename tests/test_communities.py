"""Communities over real HTTP (seed 000 §5, seed 001 §8 and §13): list with
filters, create (pending until approved, unique name), get/update/delete with permissions,
join/leave with pending requests and exact member counts, members with roles, the last
admin, community chat over REST, and the staff routes."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import BUYER2_ID, BUYER_ID, CREATOR2_ID

from documents import communities, notifications, sessions, users

GAME, INSIDERS, VOXEL = ("653000000000000000000001", "653000000000000000000002",
                         "653000000000000000000003")
MISSING = "653000000000000000000099"


@pytest.fixture
def who(tokens):
    """``await who("buyer")`` → access token of the demo account `<name>@hwc3d.com`."""
    async def sign_in(name: str) -> str:
        return await tokens(f"{name}@hwc3d.com")
    return sign_in


async def new_user(services, name: str) -> tuple[dict, str]:
    """A fresh buyer account and its access token."""
    user = await users.insert(services.db, users.new_user(f"{name}@example.com", name, None))
    pair = await sessions.start_session(services.db, services.settings, user)
    return user, pair["access_token"]


async def stored(services, community_id: str) -> dict:
    return await services.db[communities.COMMUNITIES].find_one({"_id": ObjectId(community_id)})


async def active_members(services, community_id: str) -> int:
    return await services.db[communities.MEMBERS].count_documents(
        {"community_id": ObjectId(community_id), "status": "active"})


# --------------------------------------------------------------------------- list and get

@pytest.mark.gen_test
async def test_list_shows_active_communities_with_the_callers_membership(api, who):
    reply = await api("GET", "/api/communities")
    assert reply.status == 200
    body = reply.json
    assert {c["name"] for c in body["items"]} == {"3D Game Assets", "Studio Insiders"}
    assert body["total"] == 2 and body["page"] == 1 and body["pages"] == 1
    assert all(c["is_member"] is False and c["membership"] is None for c in body["items"])
    assert "name_lower" not in body["items"][0]

    token = await who("buyer2")
    items = {c["name"]: c for c in (await api("GET", "/api/communities", token=token)).json["items"]}
    assert items["3D Game Assets"]["is_member"] is True
    assert items["3D Game Assets"]["membership"]["role"] == "member"
    assert items["Studio Insiders"]["is_member"] is False
    assert items["Studio Insiders"]["membership"]["status"] == "pending"
    assert items["3D Game Assets"]["creator"]["username"] == "creator"


@pytest.mark.gen_test
async def test_list_filters_search_category_member_of_and_status(api, who):
    async def names(query: str, token=None):
        reply = await api("GET", f"/api/communities?{query}", token=token)
        assert reply.status == 200, reply.json
        return {c["name"] for c in reply.json["items"]}

    assert await names("search=game") == {"3D Game Assets"}
    assert await names("search=.*") == set()                      # regex-escaped
    assert await names("category=creators") == {"Studio Insiders"}
    assert await names("limit=1&sort=name") == {"3D Game Assets"}
    buyer2 = await who("buyer2")
    assert await names("member_of=me", buyer2) == {"3D Game Assets", "Studio Insiders",
                                                   "Retro Voxel Club"}
    assert await names("member_of=me&status=pending", buyer2) == {"Retro Voxel Club"}
    assert await names("status=pending", await who("moderator")) == {"Retro Voxel Club"}

    assert (await api("GET", "/api/communities?status=pending", token=buyer2)).status == 403
    assert (await api("GET", "/api/communities?member_of=me")).status == 401
    for bad in ("status=gone", "member_of=you", "limit=0", "page=x", "sort=best"):
        reply = await api("GET", f"/api/communities?{bad}")
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", bad


@pytest.mark.gen_test
async def test_get_community_private_card_is_public_pending_is_hidden(api, who):
    reply = await api("GET", f"/api/communities/{INSIDERS}")
    assert reply.status == 200 and reply.json["name"] == "Studio Insiders"
    assert reply.json["is_private"] is True and reply.json["rules"]

    assert (await api("GET", f"/api/communities/{VOXEL}")).status == 404
    assert (await api("GET", f"/api/communities/{VOXEL}", token=await who("buyer"))).status == 404
    own = await api("GET", f"/api/communities/{VOXEL}", token=await who("buyer2"))
    assert own.status == 200 and own.json["status"] == "pending"
    assert (await api("GET", f"/api/communities/{VOXEL}",
                      token=await who("moderator"))).status == 200
    for bad in ("nope", MISSING, "6530000000000000000000zz"):
        reply = await api("GET", f"/api/communities/{bad}")
        assert reply.status == 404 and reply.json["reason"] == "COMMUNITY_NOT_FOUND"


# --------------------------------------------------------------------------- create

@pytest.mark.gen_test
async def test_create_is_pending_with_the_creator_as_admin(api, who, services):
    token = await who("buyer")
    reply = await api("POST", "/api/communities", token=token, json={
        "name": "  Low Poly Lovers ", "description": "Tiny triangles", "icon": "🔺",
        "category": "Art", "rules": ["Be kind", "  "], "is_private": False})
    assert reply.status == 201, reply.json
    body = reply.json
    assert body["name"] == "Low Poly Lovers" and body["slug"] == "low-poly-lovers"
    assert body["status"] == "pending" and body["member_count"] == 1 and body["post_count"] == 0
    assert body["rules"] == ["Be kind"]
    assert body["is_member"] is True and body["membership"]["role"] == "admin"
    assert await active_members(services, body["id"]) == 1
    # pending: not in the public list, visible to its creator
    names = {c["name"] for c in (await api("GET", "/api/communities")).json["items"]}
    assert "Low Poly Lovers" not in names
    assert (await api("GET", f"/api/communities/{body['id']}", token=token)).status == 200

    taken = await api("POST", "/api/communities", token=token, json={"name": "3d GAME assets"})
    assert taken.status == 409 and taken.json["error_code"] == "COMMUNITY_NAME_TAKEN"


@pytest.mark.gen_test
async def test_create_rejects_bad_input_and_anonymous(api, who, services):
    token = await who("buyer")
    before = await services.db[communities.COMMUNITIES].count_documents({})
    assert (await api("POST", "/api/communities", json={"name": "Anon Club"})).status == 401
    for bad in ({}, {"name": "ab"}, {"name": "x" * 81}, {"name": 5}, {"name": "Fine", "x": 1},
                {"name": "Fine", "rules": "not a list"}, {"name": "Fine", "is_private": "maybe"},
                {"name": "Fine", "rules": ["r"] * 21}):
        reply = await api("POST", "/api/communities", token=token, json=bad)
        assert reply.status == 422 and reply.json["field_errors"], bad
    malformed = await api("POST", "/api/communities", token=token, body="{nope",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400 and malformed.json["error_code"] == "BAD_REQUEST"
    assert await services.db[communities.COMMUNITIES].count_documents({}) == before


# --------------------------------------------------------------------------- update, delete

@pytest.mark.gen_test
async def test_update_by_community_managers_and_staff_only(api, who):
    path = f"/api/communities/{GAME}"
    assert (await api("PUT", path, json={"description": "x"})).status == 401
    member = await api("PUT", path, token=await who("buyer"), json={"description": "x"})
    assert member.status == 403
    moderator = await api("PUT", path, token=await who("creator2"),
                          json={"description": "Game-ready only", "rules": ["One", "Two"]})
    assert moderator.status == 200 and moderator.json["description"] == "Game-ready only"
    assert moderator.json["rules"] == ["One", "Two"]
    renamed = await api("PUT", path, token=await who("moderator"), json={"name": "Game Assets 3D"})
    assert renamed.status == 200 and renamed.json["slug"] == "game-assets-3d"
    clash = await api("PUT", path, token=await who("creator"), json={"name": "studio insiders"})
    assert clash.status == 409 and clash.json["error_code"] == "COMMUNITY_NAME_TAKEN"
    for bad in ({}, {"status": "active"}, {"name": ""}, {"is_private": []}):
        assert (await api("PUT", path, token=await who("creator"), json=bad)).status == 422, bad
    assert (await api("PUT", f"/api/communities/{MISSING}", token=await who("creator"),
                      json={"description": "x"})).status == 404


@pytest.mark.gen_test
async def test_delete_by_owner_or_staff_cascades(api, who, services):
    db = services.db
    post = await api("POST", f"/api/communities/{GAME}/posts", token=await who("buyer"),
                     json={"content": "Buy cheap followers at example.com"})
    reported = await api("POST", f"/api/posts/{post.json['id']}/report",
                         token=await who("creator2"), json={"reason": "Spam/Self-promotion"})
    assert reported.status in (200, 201), reported.json
    assert (await api("DELETE", f"/api/communities/{GAME}", token=await who("creator2"))).status == 403
    assert (await api("DELETE", f"/api/communities/{GAME}", token=await who("buyer"))).status == 403
    reply = await api("DELETE", f"/api/communities/{GAME}", token=await who("creator"))
    assert reply.status == 204
    queue = (await api("GET", "/api/admin/reports?status=pending",
                       token=await who("moderator"))).json["items"]
    assert all(r["content_id"] != post.json["id"] for r in queue)
    dismissed = (await api("GET", "/api/admin/reports?status=dismissed",
                           token=await who("moderator"))).json["items"]
    assert [r["notes"] for r in dismissed if r["content_id"] == post.json["id"]] == [
        "The community was deleted"]
    oid = ObjectId(GAME)
    assert await db[communities.COMMUNITIES].find_one({"_id": oid}) is None
    assert await db[communities.MEMBERS].count_documents({"community_id": oid}) == 0
    assert await db["posts"].count_documents({"community_id": oid}) == 0
    assert (await api("GET", f"/api/communities/{GAME}")).status == 404
    staff = await api("DELETE", f"/api/communities/{INSIDERS}", token=await who("moderator"))
    assert staff.status == 204
    again = await api("DELETE", f"/api/communities/{INSIDERS}", token=await who("moderator"))
    assert again.status == 404


# --------------------------------------------------------------------------- join and leave

@pytest.mark.gen_test
async def test_join_public_then_leave_with_both_route_forms(api, services):
    _user, token = await new_user(services, "newbie")
    joined = await api("POST", f"/api/communities/{GAME}/join", token=token)
    assert joined.status == 201, joined.json
    assert joined.json["is_member"] is True and joined.json["member_count"] == 6
    again = await api("POST", f"/api/communities/{GAME}/join", token=token)
    assert again.status == 409 and again.json["error_code"] == "ALREADY_MEMBER"

    left = await api("DELETE", f"/api/communities/{GAME}/leave", token=token)
    assert left.status == 200 and left.json["member_count"] == 5 and left.json["is_member"] is False
    missing = await api("DELETE", f"/api/communities/{GAME}/leave", token=token)
    assert missing.status == 404 and missing.json["reason"] == "NOT_A_MEMBER"
    assert (await api("POST", f"/api/communities/{GAME}/join", token=token)).status == 201
    assert (await api("DELETE", f"/api/communities/{GAME}/join", token=token)).status == 200
    assert (await stored(services, GAME))["member_count"] == 5 == await active_members(services, GAME)

    assert (await api("POST", f"/api/communities/{GAME}/join")).status == 401
    assert (await api("POST", f"/api/communities/{VOXEL}/join", token=token)).status == 404
    assert (await api("POST", "/api/communities/bad-id/join", token=token)).status == 404


@pytest.mark.gen_test
async def test_private_join_is_a_pending_request_until_approved(api, who, services):
    user, token = await new_user(services, "hopeful")
    requested = await api("POST", f"/api/communities/{INSIDERS}/join", token=token)
    assert requested.status == 202
    assert requested.json["membership"]["status"] == "pending" and requested.json["member_count"] == 3
    twice = await api("POST", f"/api/communities/{INSIDERS}/join", token=token)
    assert twice.status == 409 and twice.json["error_code"] == "JOIN_REQUEST_PENDING"
    # still not a member: posts and members stay hidden
    assert (await api("GET", f"/api/communities/{INSIDERS}/members", token=token)).status == 403

    path = f"/api/communities/{INSIDERS}/members?status=pending"
    assert (await api("GET", path, token=await who("buyer"))).status == 403
    pending = await api("GET", path, token=await who("creator2"))
    assert {m["user"]["username"] for m in pending.json["items"]} == {"buyer2", "hopeful"}

    approve = f"/api/communities/{INSIDERS}/members/{user['_id']}/approve"
    assert (await api("PUT", approve, token=await who("buyer"))).status == 403
    ok = await api("PUT", approve, token=await who("creator"))          # community moderator
    assert ok.status == 200 and ok.json["status"] == "active"
    assert (await api("PUT", approve, token=await who("creator"))).status == 404
    assert (await stored(services, INSIDERS))["member_count"] == 4 == await active_members(
        services, INSIDERS)
    assert (await api("GET", f"/api/communities/{INSIDERS}/members", token=token)).status == 200

    # a pending request can be withdrawn without touching the count
    withdrawn = await api("DELETE", f"/api/communities/{INSIDERS}/leave", token=await who("buyer2"))
    assert withdrawn.status == 200 and withdrawn.json["member_count"] == 4


@pytest.mark.gen_test
async def test_member_count_is_exact_when_many_join_and_leave_at_once(api, services):
    people = [await new_user(services, f"crowd{i}") for i in range(12)]
    replies = await asyncio.gather(*(api("POST", f"/api/communities/{GAME}/join", token=t)
                                     for _u, t in people for _twice in (1, 2)))
    assert sorted(r.status for r in replies) == [201] * 12 + [409] * 12
    assert (await stored(services, GAME))["member_count"] == 17 == await active_members(services, GAME)
    replies = await asyncio.gather(*(api("DELETE", f"/api/communities/{GAME}/leave", token=t)
                                     for _u, t in people[:6] for _twice in (1, 2)))
    assert sorted(r.status for r in replies) == [200] * 6 + [404] * 6
    assert (await stored(services, GAME))["member_count"] == 11 == await active_members(services, GAME)


@pytest.mark.gen_test
async def test_last_admin_must_hand_over_before_leaving(api, who, services):
    creator = await who("creator")
    stuck = await api("DELETE", f"/api/communities/{GAME}/leave", token=creator)
    assert stuck.status == 409 and stuck.json["error_code"] == "LAST_ADMIN"
    role = f"/api/communities/{GAME}/members/{BUYER_ID}"
    assert (await api("PUT", role, token=await who("creator2"), json={"role": "admin"})).status == 403
    assert (await api("PUT", role, token=creator, json={"role": "owner"})).status == 422
    promoted = await api("PUT", role, token=creator, json={"role": "admin"})
    assert promoted.status == 200 and promoted.json["role"] == "admin"
    assert (await api("DELETE", f"/api/communities/{GAME}/leave", token=creator)).status == 200
    demote = await api("PUT", role, token=await who("buyer"), json={"role": "member"})
    assert demote.status == 409 and demote.json["error_code"] == "LAST_ADMIN"
    admins = await services.db[communities.MEMBERS].count_documents(
        {"community_id": ObjectId(GAME), "role": "admin"})
    assert admins == 1
    kicked = await api("DELETE", f"/api/communities/{GAME}/members/{BUYER2_ID}",
                       token=await who("buyer"))
    assert kicked.status == 204 and (await stored(services, GAME))["member_count"] == 3


# --------------------------------------------------------------------------- members

@pytest.mark.gen_test
async def test_members_with_roles_and_private_members_hidden(api, who):
    reply = await api("GET", f"/api/communities/{GAME}/members?limit=2")
    assert reply.status == 200 and reply.json["total"] == 5 and reply.json["pages"] == 3
    first = reply.json["items"][0]
    assert first["user"]["username"] == "creator" and first["role"] == "admin"
    mods = await api("GET", f"/api/communities/{GAME}/members?role=moderator")
    assert [m["user_id"] for m in mods.json["items"]] == [CREATOR2_ID]

    path = f"/api/communities/{INSIDERS}/members"
    assert (await api("GET", path)).status == 403
    assert (await api("GET", path, token=await who("buyer2"))).status == 403    # pending
    member = await api("GET", path, token=await who("buyer"))
    assert member.status == 200 and member.json["total"] == 3
    assert (await api("GET", path, token=await who("moderator"))).status == 200
    assert (await api("GET", f"{path}?status=pending")).status == 401
    assert (await api("GET", f"{path}?role=king")).status == 422
    assert (await api("GET", f"/api/communities/{MISSING}/members")).status == 404


# --------------------------------------------------------------------------- chat over REST

@pytest.mark.gen_test
async def test_community_chat_members_write_and_read(api, who, services):
    buyer = await who("buyer")
    sent = await api("POST", "/api/communities/messages", token=buyer,
                     json={"community_id": GAME, "content": "  Hello all  "})
    assert sent.status == 201, sent.json
    assert sent.json["content"] == "Hello all" and sent.json["sender"]["username"] == "buyer"
    listed = await api("GET", f"/api/communities/messages?community_id={GAME}", token=buyer)
    assert listed.status == 200 and listed.json["items"][0]["id"] == sent.json["id"]

    _user, outsider = await new_user(services, "lurker")
    reads = await api("GET", f"/api/communities/messages?community_id={GAME}", token=outsider)
    assert reads.status == 200                                     # public: read-only
    writes = await api("POST", "/api/communities/messages", token=outsider,
                       json={"community_id": GAME, "content": "hi"})
    assert writes.status == 403 and writes.json["error_code"] == "NOT_A_MEMBER"
    private = await api("GET", f"/api/communities/messages?community_id={INSIDERS}", token=outsider)
    assert private.status == 403

    assert (await api("GET", f"/api/communities/messages?community_id={GAME}")).status == 401
    mine = await api("GET", "/api/communities/messages", token=buyer)    # every community of mine
    assert mine.status == 200 and mine.json["items"][0]["id"] == sent.json["id"]
    assert (await api("GET", "/api/communities/messages", token=outsider)).json["items"] == []
    for bad in ({"community_id": GAME, "content": "   "}, {"community_id": GAME},
                {"community_id": GAME, "content": "x" * 5001},
                {"community_id": GAME, "content": "hi", "attachments": ["http://evil/x.png"]}):
        reply = await api("POST", "/api/communities/messages", token=buyer, json=bad)
        assert reply.status == 422, bad
    for missing in ("nope", MISSING, VOXEL):
        reply = await api("POST", "/api/communities/messages", token=buyer,
                          json={"community_id": missing, "content": "hi"})
        assert reply.status == 404, missing
    assert await services.db[communities.CHAT].count_documents({}) == 1


# --------------------------------------------------------------------------- staff routes

@pytest.mark.gen_test
async def test_admin_lists_every_status_and_approves_pending(api, who, services):
    staff = await who("moderator")
    assert (await api("GET", "/api/admin/communities", token=await who("buyer"))).status == 403
    assert (await api("GET", "/api/admin/communities")).status == 401
    listed = await api("GET", "/api/admin/communities", token=staff)
    assert listed.status == 200 and listed.json["total"] == 3
    assert listed.json["items"][0]["name"] == "Retro Voxel Club"          # newest first
    pending = await api("GET", "/api/admin/communities?status=pending&search=voxel", token=staff)
    assert [c["id"] for c in pending.json["items"]] == [VOXEL]
    assert (await api("GET", "/api/admin/communities?status=zzz", token=staff)).status == 422

    detail = await api("GET", f"/api/admin/communities/{INSIDERS}", token=staff)
    assert detail.status == 200 and detail.json["pending_requests"] == 1

    approved = await api("PUT", f"/api/admin/communities/{VOXEL}/approve", token=staff)
    assert approved.status == 200 and approved.json["status"] == "active"
    again = await api("PUT", f"/api/admin/communities/{VOXEL}/approve", token=staff)
    assert again.status == 409 and again.json["error_code"] == "COMMUNITY_NOT_PENDING"
    assert (await api("PUT", f"/api/admin/communities/{MISSING}/approve", token=staff)).status == 404
    notes, _meta = await notifications.list_for(services.db, ObjectId(BUYER2_ID), unread_only=False,
                                                page=1, limit=10)
    assert any(n["type"] == "community_approved" for n in notes)
    assert "Retro Voxel Club" in {c["name"] for c in (await api("GET", "/api/communities")).json["items"]}
    recent = await api("GET", f"/api/admin/communities/{VOXEL}", token=staff)
    assert recent.json["recent_actions"][0]["action_type"] == "community_approved"


@pytest.mark.gen_test
async def test_admin_creates_active_updates_status_and_deletes(api, who, services):
    staff = await who("admin")
    created = await api("POST", "/api/admin/communities", token=staff,
                        json={"name": "Official News", "category": "News"})
    assert created.status == 201 and created.json["status"] == "active"
    cid = created.json["id"]
    suspended = await api("PUT", f"/api/admin/communities/{cid}", token=staff,
                          json={"status": "suspended"})
    assert suspended.status == 200 and suspended.json["status"] == "suspended"
    assert (await api("GET", f"/api/communities/{cid}")).status == 404
    early = await api("PUT", f"/api/admin/communities/{VOXEL}", token=staff, json={"status": "active"})
    assert early.status == 409
    for bad in ({}, {"status": "pending"}, {"member_count": 9}):
        assert (await api("PUT", f"/api/admin/communities/{cid}", token=staff, json=bad)).status == 422
    dup = await api("POST", "/api/admin/communities", token=staff, json={"name": "official news"})
    assert dup.status == 409
    assert (await api("DELETE", f"/api/admin/communities/{cid}", token=staff)).status == 204
    assert (await api("GET", f"/api/admin/communities/{cid}", token=staff)).status == 404
    assert (await api("DELETE", "/api/admin/communities/zz", token=staff)).status == 404
    actions = [(a["action_type"], a["details"]) async for a in services.db.admin_actions.find(
        {"target_type": "community", "target_id": ObjectId(cid)}).sort("created_at", 1)]
    assert actions == [("community_created", {"name": "Official News"}),
                       ("community_updated", {"status": "suspended"}),
                       ("community_deleted", {"name": "Official News"})]
    creator = await who("creator")
    assert (await api("POST", "/api/admin/communities", token=creator,
                      json={"name": "Sneaky"})).status == 403


# --------------------------------------------------------------------------- OpenAPI

COMMUNITY_ROUTES = {
    "/api/communities": {"get", "post"},
    "/api/communities/messages": {"get", "post"},
    "/api/communities/{community_id}": {"get", "put", "delete"},
    "/api/communities/{community_id}/join": {"post", "delete"},
    "/api/communities/{community_id}/leave": {"delete"},
    "/api/communities/{community_id}/members": {"get"},
    "/api/communities/{community_id}/members/{user_id}": {"put", "delete"},
    "/api/communities/{community_id}/members/{user_id}/approve": {"put"},
    "/api/communities/{community_id}/posts": {"get", "post"},
    "/api/posts/{post_id}": {"get", "put", "delete"},
    "/api/posts/{post_id}/pin": {"put"},
    "/api/posts/{post_id}/react": {"post", "delete"},
    "/api/posts/{post_id}/comments": {"get", "post"},
    "/api/posts/{post_id}/comments/{comment_id}/report": {"post"},
    "/api/posts/{post_id}/share": {"post"},
    "/api/posts/{post_id}/report": {"post"},
    "/api/admin/communities": {"get", "post"},
    "/api/admin/communities/{community_id}": {"get", "put", "delete"},
    "/api/admin/communities/{community_id}/approve": {"put"},
    "/api/admin/reports": {"get"},
    "/api/admin/reports/{report_id}/resolve": {"put"},
}


@pytest.mark.gen_test
async def test_every_community_route_is_in_openapi(api):
    spec = (await api("GET", "/openapi.json")).json
    for path, verbs in COMMUNITY_ROUTES.items():
        assert verbs <= set(spec["paths"].get(path, {})), path
    react = spec["paths"]["/api/posts/{post_id}/react"]["post"]
    schema = react["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert spec["components"]["schemas"][schema]["properties"]["reaction_type"]["enum"] == [
        "like", "love", "wow", "fire"]
    assert spec["paths"]["/api/admin/reports"]["get"]["x-permission"] == "reports.resolve"
