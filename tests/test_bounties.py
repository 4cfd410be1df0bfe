"""Bounties over real HTTP (seed 000 "Additional Features", seed 001 §10 and §13): posting,
listing with filters, the detail per viewer, applying (creators only, once, while open),
selecting a winner (one winner under racing requests), notifications, staff moderation."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from demo_accounts import (
    ADMIN,
    BUYER,
    BUYER2,
    BUYER_ID,
    CREATOR,
    CREATOR2,
    CREATOR2_ID,
    CREATOR_ID,
    MODERATOR,
    PENDING_OF_CREATOR,
)
from socket_support import join, next_of, ws_url

from documents import sessions, users

CREATOR_MODEL, CREATOR2_MODEL = "652000000000000000000001", "652000000000000000000002"
UNKNOWN = "ffffffffffffffffffffffff"


def future(days: float = 7) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat().replace("+00:00", "Z")


async def post_bounty(api, token, **fields) -> dict:
    payload = {"title": "Low-poly fox", "description": "A rigged low-poly fox for a game",
               "requirements": "Under 5k tris, GLB", "budget": 150, "deadline": future(),
               **fields}
    reply = await api("POST", "/api/bounties", token=token, json=payload)
    assert reply.status == 201, reply.json
    return reply.json


async def apply(api, token, bounty_id, **fields):
    return await api("POST", f"/api/bounties/{bounty_id}/apply", token=token,
                     json={"proposal": "I can do this in three days", **fields})


async def stored(services, bounty_id) -> dict:
    return await services.db.bounties.find_one({"_id": ObjectId(bounty_id)})


async def new_creators(services, count: int) -> list[str]:
    out = []
    for i in range(count):
        user = await users.insert(services.db, users.new_user(
            f"maker{i}@example.com", f"maker{i}", None, user_type="creator"))
        out.append((await sessions.start_session(services.db, services.settings,
                                                 user))["access_token"])
    return out


# --------------------------------------------------------------------------- create / read

@pytest.mark.gen_test
async def test_post_and_read_a_bounty(api, tokens, services):
    buyer = await tokens(BUYER)
    made = await post_bounty(api, buyer, title="  Low-poly fox  ", budget="150.50",
                             category="characters", tags=["Fox", "fox", "game"])
    assert made["title"] == "Low-poly fox" and made["budget"] == 150.5
    assert made["currency"] == "usd" and made["status"] == "open"
    assert made["category"] == "Characters" and made["tags"] == ["fox", "game"]
    assert made["application_count"] == 0 and made["applicants"] == 0
    assert made["creator"]["id"] == BUYER_ID and made["winner"] is None
    assert made["is_accepting_applications"] is True
    assert made["deadline"].endswith("Z") and made["created_at"].endswith("Z")
    doc = await stored(services, made["id"])
    assert doc["budget_cents"] == 15050 and doc["creator_id"] == ObjectId(BUYER_ID)

    reply = await api("GET", f"/api/bounties/{made['id']}")
    assert reply.status == 200 and reply.json["title"] == "Low-poly fox"
    assert "applications" not in reply.json and reply.json["my_application"] is None


@pytest.mark.gen_test
async def test_post_requires_a_token(api):
    reply = await api("POST", "/api/bounties", json={"title": "x"})
    assert reply.status == 401 and reply.json["error_code"] == "UNAUTHORIZED"


@pytest.mark.gen_test
@pytest.mark.parametrize(("change", "field"), [
    ({"deadline": "2020-01-01T00:00:00Z"}, "deadline"),
    ({"deadline": "not a date"}, "deadline"),
    ({"deadline": None}, "deadline"),
    ({"budget": -5}, "budget"),
    ({"budget": 0}, "budget"),
    ({"budget": 10.001}, "budget"),
    ({"budget": "ten"}, "budget"),
    ({"budget": True}, "budget"),
    ({"budget": 100_000.01}, "budget"),
    ({"title": ""}, "title"),
    ({"title": 12}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"category": "No such category"}, "category"),
    ({"tags": "fox"}, "tags"),
    ({"tags": ["t"] * 11}, "tags"),
    ({"status": "completed"}, "status"),
    ({"winner_id": BUYER_ID}, "winner_id"),
])
async def test_post_rejects_bad_fields(api, tokens, services, change, field):
    buyer = await tokens(BUYER)
    payload = {"title": "Fox", "description": "d", "budget": 10, "deadline": future(), **change}
    reply = await api("POST", "/api/bounties", token=buyer, json=payload)
    assert reply.status == 422, reply.json
    assert reply.json["error_code"] == "VALIDATION_ERROR" and field in reply.json["field_errors"]
    assert await services.db.bounties.count_documents({}) == 0


@pytest.mark.gen_test
async def test_post_rejects_malformed_json_and_missing_fields(api, tokens):
    buyer = await tokens(BUYER)
    reply = await api("POST", "/api/bounties", token=buyer, body=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    reply = await api("POST", "/api/bounties", token=buyer, json={})
    assert reply.status == 422
    assert {"title", "description", "budget", "deadline"} <= set(reply.json["field_errors"])
    reply = await api("POST", "/api/bounties", token=buyer, json=["a list"])
    assert reply.status == 422


@pytest.mark.gen_test
async def test_unknown_and_invalid_ids_are_404(api, tokens):
    creator = await tokens(CREATOR)
    for path in ("/api/bounties/nope", f"/api/bounties/{UNKNOWN}"):
        reply = await api("GET", path)
        assert reply.status == 404 and reply.json["error_code"] in ("BOUNTY_NOT_FOUND", "NOT_FOUND")
        assert (await apply(api, creator, path.rsplit("/", 1)[1])).status == 404
        reply = await api("PUT", f"{path}/select-winner", token=creator,
                          json={"application_id": UNKNOWN})
        assert reply.status == 404


# --------------------------------------------------------------------------- listing

@pytest.mark.gen_test
async def test_list_filters_and_paginates(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    cheap = await post_bounty(api, buyer, title="Cheap chair", budget=20, category="Furniture")
    mid = await post_bounty(api, buyer2, title="Spaceship hull", budget=300,
                            description="Sci-fi hull plating")
    rich = await post_bounty(api, buyer, title="Castle", budget=2000, tags=["medieval"])
    gone = await post_bounty(api, buyer, title="Cancelled castle", budget=50)
    await services.db.bounties.update_one({"_id": ObjectId(gone["id"])},
                                          {"$set": {"status": "cancelled"}})
    await services.db.bounties.update_one({"_id": ObjectId(mid["id"])},
                                          {"$set": {"status": "in_progress"}})

    async def ids(query: str = "", token=None):
        reply = await api("GET", f"/api/bounties{query}", token=token)
        assert reply.status == 200, reply.json
        return [i["id"] for i in reply.json["items"]], reply.json

    assert (await ids())[0] == [rich["id"], mid["id"], cheap["id"]]   # newest first, no cancelled
    assert (await ids("?status=open"))[0] == [rich["id"], cheap["id"]]
    assert (await ids("?status=in_progress"))[0] == [mid["id"]]
    assert (await ids("?category=furniture"))[0] == [cheap["id"]]
    assert (await ids("?min_budget=100&max_budget=500"))[0] == [mid["id"]]
    assert (await ids("?min_budget=20.00&max_budget=20"))[0] == [cheap["id"]]
    assert (await ids("?search=sci-fi"))[0] == [mid["id"]]
    assert (await ids("?search=MEDIEVAL"))[0] == [rich["id"]]
    assert (await ids("?sort=budget"))[0] == [rich["id"], mid["id"], cheap["id"]]
    assert (await ids("?status=&page=1"))[0] == [rich["id"], mid["id"], cheap["id"]]
    found, page = await ids("?limit=2&page=2")
    assert found == [cheap["id"]]
    assert (page["total"], page["page"], page["limit"], page["pages"]) == (3, 2, 2, 2)
    mine, _ = await ids("?mine=true", token=buyer)
    assert mine == [gone["id"], rich["id"], cheap["id"]]
    assert (await api("GET", "/api/bounties?mine=true")).status == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["status=cancelled", "status=done", "min_budget=-1",
                                   "max_budget=1.001", "min_budget=9&max_budget=8", "limit=0",
                                   "page=x", "sort=random"])
async def test_list_rejects_bad_query(api, query):
    reply = await api("GET", f"/api/bounties?{query}")
    assert reply.status == 422, (query, reply.json)
    assert reply.json["error_code"] == "VALIDATION_ERROR"


# --------------------------------------------------------------------------- applying

@pytest.mark.gen_test
async def test_apply_notifies_owner_and_counts(api, tokens, services):
    buyer, creator = await tokens(BUYER), await tokens(CREATOR)
    bounty = await post_bounty(api, buyer)
    reply = await apply(api, creator, bounty["id"], price="120.50",
                        portfolio_model_ids=[CREATOR_MODEL])
    assert reply.status == 201, reply.json
    application = reply.json
    assert application["status"] == "pending" and application["price"] == 120.5
    assert application["applicant"]["id"] == CREATOR_ID and application["bounty_id"] == bounty["id"]
    assert application["portfolio_model_ids"] == [CREATOR_MODEL]
    assert application["application_count"] == 1
    assert (await stored(services, bounty["id"]))["application_count"] == 1

    note = await services.db.notifications.find_one({"user_id": ObjectId(BUYER_ID),
                                                     "type": "bounty_application"})
    assert note is not None and note["is_read"] is False
    assert note["data"]["bounty_id"] == bounty["id"]
    assert note["data"]["application_id"] == application["id"]
    assert note["data"]["applicant"]["id"] == CREATOR_ID
    assert note["action_url"] == f"/bounties/{bounty['id']}"
    reply = await api("GET", "/api/users/me/notifications", token=buyer)
    assert reply.status == 200
    assert any(n["type"] == "bounty_application" for n in reply.json["items"])


@pytest.mark.gen_test
async def test_owner_gets_the_application_live(api, tokens, base_url):
    buyer, creator = await tokens(BUYER), await tokens(CREATOR)
    bounty = await post_bounty(api, buyer)
    conn, _ = await join(ws_url(base_url, "/ws/notifications", buyer), presence=False)
    try:
        application = (await apply(api, creator, bounty["id"])).json
        event = await next_of(conn, "bounty_application")
        assert event["channel"] == f"notifications:{BUYER_ID}"
        assert event["data"]["data"]["application_id"] == application["id"]
        assert event["data"]["action_url"] == f"/bounties/{bounty['id']}"
    finally:
        conn.close()


@pytest.mark.gen_test
async def test_detail_depends_on_the_viewer(api, tokens):
    buyer, creator = await tokens(BUYER), await tokens(CREATOR)
    creator2, moderator = await tokens(CREATOR2), await tokens(MODERATOR)
    bounty = await post_bounty(api, buyer)
    first = (await apply(api, creator, bounty["id"], proposal="Mine")).json
    await apply(api, creator2, bounty["id"], proposal="Theirs")
    path = f"/api/bounties/{bounty['id']}"

    owner_view = (await api("GET", path, token=buyer)).json
    assert [a["proposal"] for a in owner_view["applications"]] == ["Mine", "Theirs"]
    assert owner_view["application_count"] == 2
    assert "applications" in (await api("GET", path, token=moderator)).json

    applicant_view = (await api("GET", path, token=creator)).json
    assert "applications" not in applicant_view
    assert applicant_view["my_application"]["id"] == first["id"]
    assert applicant_view["application_count"] == 2

    anonymous = (await api("GET", path)).json
    assert "applications" not in anonymous and anonymous["my_application"] is None
    assert anonymous["application_count"] == 2


@pytest.mark.gen_test
async def test_apply_rules(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    creator, creator2 = await tokens(CREATOR), await tokens(CREATOR2)
    bounty = await post_bounty(api, buyer)
    own = await post_bounty(api, creator)

    reply = await apply(api, buyer2, bounty["id"])
    assert reply.status == 403 and reply.json["error_code"] == "CREATORS_ONLY"
    reply = await apply(api, creator, own["id"])
    assert reply.status == 400 and reply.json["error_code"] == "CANNOT_APPLY_OWN_BOUNTY"
    assert (await apply(api, None, bounty["id"])).status == 401

    assert (await apply(api, creator, bounty["id"])).status == 201
    reply = await apply(api, creator, bounty["id"])
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_APPLIED"

    await services.db.bounties.update_one(
        {"_id": ObjectId(bounty["id"])},
        {"$set": {"deadline": datetime.now(UTC) - timedelta(minutes=1)}})
    reply = await apply(api, creator2, bounty["id"])
    assert reply.status == 409 and reply.json["error_code"] == "BOUNTY_CLOSED"
    detail = (await api("GET", f"/api/bounties/{bounty['id']}")).json
    assert detail["is_accepting_applications"] is False

    cancelled = await post_bounty(api, buyer)
    await services.db.bounties.update_one({"_id": ObjectId(cancelled["id"])},
                                          {"$set": {"status": "cancelled"}})
    reply = await apply(api, creator2, cancelled["id"])
    assert reply.status == 409 and reply.json["error_code"] == "BOUNTY_CLOSED"
    assert (await stored(services, bounty["id"]))["application_count"] == 1
    assert await services.db.bounty_applications.count_documents({}) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize(("payload", "field"), [
    ({}, "proposal"),
    ({"proposal": ""}, "proposal"),
    ({"proposal": "x" * 5001}, "proposal"),
    ({"proposal": "ok", "price": -1}, "price"),
    ({"proposal": "ok", "price": 1.234}, "price"),
    ({"proposal": "ok", "portfolio_model_ids": [CREATOR2_MODEL]}, "portfolio_model_ids"),
    ({"proposal": "ok", "portfolio_model_ids": [PENDING_OF_CREATOR]}, "portfolio_model_ids"),
    ({"proposal": "ok", "portfolio_model_ids": ["bad-id"]}, "portfolio_model_ids"),
    ({"proposal": "ok", "portfolio_model_ids": "x"}, "portfolio_model_ids"),
    ({"proposal": "ok", "status": "selected"}, "status"),
])
async def test_apply_rejects_bad_fields(api, tokens, services, payload, field):
    bounty = await post_bounty(api, await tokens(BUYER))
    reply = await api("POST", f"/api/bounties/{bounty['id']}/apply",
                      token=await tokens(CREATOR), json=payload)
    assert reply.status == 422, reply.json
    assert field in reply.json["field_errors"]
    assert await services.db.bounty_applications.count_documents({}) == 0
    assert (await stored(services, bounty["id"]))["application_count"] == 0
    assert await services.db.notifications.count_documents({"type": "bounty_application"}) == 0


@pytest.mark.gen_test
async def test_apply_malformed_json_is_400(api, tokens):
    bounty = await post_bounty(api, await tokens(BUYER))
    reply = await api("POST", f"/api/bounties/{bounty['id']}/apply",
                      token=await tokens(CREATOR), body=b'{"proposal": ',
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"


@pytest.mark.gen_test
async def test_application_count_is_exact_under_concurrency(api, tokens, services):
    bounty = await post_bounty(api, await tokens(BUYER))
    makers = await new_creators(services, 8)
    replies = await asyncio.gather(*[apply(api, t, bounty["id"]) for t in makers + makers])
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] * 8 + [409] * 8
    assert (await stored(services, bounty["id"]))["application_count"] == 8
    assert await services.db.bounty_applications.count_documents(
        {"bounty_id": ObjectId(bounty["id"])}) == 8
    assert await services.db.notifications.count_documents(
        {"user_id": ObjectId(BUYER_ID), "type": "bounty_application"}) == 8


# --------------------------------------------------------------------------- winner

@pytest.mark.gen_test
async def test_select_winner(api, tokens, services):
    buyer = await tokens(BUYER)
    creator, creator2 = await tokens(CREATOR), await tokens(CREATOR2)
    bounty = await post_bounty(api, buyer)
    first = (await apply(api, creator, bounty["id"])).json
    second = (await apply(api, creator2, bounty["id"])).json
    path = f"/api/bounties/{bounty['id']}/select-winner"

    reply = await api("PUT", path, token=creator2, json={"application_id": second["id"]})
    assert reply.status == 403 and reply.json["error_code"] == "NOT_BOUNTY_OWNER"
    assert (await api("PUT", path, json={"application_id": second["id"]})).status == 401
    for bad in (UNKNOWN, "nope"):
        reply = await api("PUT", path, token=buyer, json={"application_id": bad})
        assert reply.status == 404 and reply.json["reason"] == "APPLICATION_NOT_FOUND"
    reply = await api("PUT", path, token=buyer, json={})
    assert reply.status == 422 and "application_id" in reply.json["field_errors"]
    reply = await api("PUT", path, token=buyer, json={"application_id": second["id"], "x": 1})
    assert reply.status == 422 and "x" in reply.json["field_errors"]
    assert (await stored(services, bounty["id"]))["status"] == "open"

    reply = await api("PUT", path, token=buyer, json={"application_id": second["id"]})
    assert reply.status == 200, reply.json
    assert reply.json["status"] == "completed" and reply.json["winner"]["id"] == CREATOR2_ID
    assert reply.json["winning_application_id"] == second["id"]
    by_id = {a["id"]: a["status"] for a in reply.json["applications"]}
    assert by_id == {first["id"]: "rejected", second["id"]: "selected"}
    doc = await stored(services, bounty["id"])
    assert doc["winner_id"] == ObjectId(CREATOR2_ID) and doc["status"] == "completed"
    note = await services.db.notifications.find_one({"user_id": ObjectId(CREATOR2_ID)})
    assert note["type"] == "bounty_application" and note["data"]["status"] == "selected"

    reply = await api("PUT", path, token=buyer, json={"application_id": first["id"]})
    assert reply.status == 409 and reply.json["error_code"] == "BOUNTY_CLOSED"
    reply = await apply(api, await tokens(ADMIN), bounty["id"])
    assert reply.status in (403, 409)


@pytest.mark.gen_test
async def test_application_of_another_bounty_is_404(api, tokens):
    buyer = await tokens(BUYER)
    creator = await tokens(CREATOR)
    one, other = await post_bounty(api, buyer), await post_bounty(api, buyer)
    foreign = (await apply(api, creator, other["id"])).json
    reply = await api("PUT", f"/api/bounties/{one['id']}/select-winner", token=buyer,
                      json={"application_id": foreign["id"]})
    assert reply.status == 404 and reply.json["reason"] == "APPLICATION_NOT_FOUND"


@pytest.mark.gen_test
async def test_racing_selections_have_one_winner(api, tokens, services):
    buyer = await tokens(BUYER)
    bounty = await post_bounty(api, buyer)
    makers = await new_creators(services, 6)
    applications = [(await apply(api, t, bounty["id"])).json for t in makers]
    path = f"/api/bounties/{bounty['id']}/select-winner"
    replies = await asyncio.gather(*[
        api("PUT", path, token=buyer, json={"application_id": a["id"]}) for a in applications])
    assert sorted(r.status for r in replies) == [200] + [409] * 5
    winner = next(r.json for r in replies if r.status == 200)
    assert await services.db.bounty_applications.count_documents({"status": "selected"}) == 1
    chosen = await services.db.bounty_applications.find_one({"status": "selected"})
    assert str(chosen["_id"]) == winner["winning_application_id"]
    assert await services.db.bounty_applications.count_documents({"status": "rejected"}) == 5
    assert (await stored(services, bounty["id"]))["winner_id"] == chosen["applicant_id"]


# --------------------------------------------------------------------------- staff

@pytest.mark.gen_test
async def test_admin_lists_edits_cancels_and_deletes(api, tokens, services):
    buyer, moderator = await tokens(BUYER), await tokens(MODERATOR)
    creator = await tokens(CREATOR)
    bounty = await post_bounty(api, buyer, title="Spammy")
    other = await post_bounty(api, buyer, title="Fine")
    path = f"/api/admin/bounties/{bounty['id']}"

    reply = await api("GET", "/api/admin/bounties?search=spam", token=moderator)
    assert reply.status == 200 and [i["id"] for i in reply.json["items"]] == [bounty["id"]]
    reply = await api("GET", f"/api/admin/bounties?creator_id={BUYER_ID}", token=moderator)
    assert reply.json["total"] == 2
    assert (await api("GET", "/api/admin/bounties?creator_id=x", token=moderator)).json[
        "total"] == 0

    reply = await api("PUT", path, token=moderator, json={"title": "Tidy title", "budget": 99.99,
                                                          "deadline": future(30)})
    assert reply.status == 200 and reply.json["title"] == "Tidy title"
    assert reply.json["budget"] == 99.99
    reply = await api("PUT", path, token=moderator, json={"status": "cancelled"})
    assert reply.status == 200 and reply.json["status"] == "cancelled"
    assert [i["id"] for i in (await api("GET", "/api/bounties")).json["items"]] == [other["id"]]
    reply = await api("GET", "/api/admin/bounties?status=cancelled", token=moderator)
    assert [i["id"] for i in reply.json["items"]] == [bounty["id"]]
    actions = await services.db.admin_actions.count_documents({"target_type": "bounty"})
    assert actions == 2

    assert (await api("DELETE", path, token=moderator)).status == 204
    assert await stored(services, bounty["id"]) is None
    assert (await api("DELETE", path, token=moderator)).status == 404

    application = (await apply(api, creator, other["id"])).json
    await api("PUT", f"/api/bounties/{other['id']}/select-winner", token=buyer,
              json={"application_id": application["id"]})
    other_path = f"/api/admin/bounties/{other['id']}"
    reply = await api("DELETE", other_path, token=moderator)
    assert reply.status == 409 and reply.json["error_code"] == "BOUNTY_HAS_WINNER"
    reply = await api("PUT", other_path, token=moderator, json={"status": "open"})
    assert reply.status == 409 and reply.json["error_code"] == "BOUNTY_COMPLETED"
    assert (await stored(services, other["id"]))["status"] == "completed"


@pytest.mark.gen_test
async def test_admin_routes_need_staff_and_good_input(api, tokens):
    buyer, moderator = await tokens(BUYER), await tokens(MODERATOR)
    bounty = await post_bounty(api, buyer)
    path = f"/api/admin/bounties/{bounty['id']}"
    for method, url, payload in (("GET", "/api/admin/bounties", None),
                                 ("PUT", path, {"title": "Hacked"}), ("DELETE", path, None)):
        assert (await api(method, url, json=payload)).status == 401
        reply = await api(method, url, token=buyer, json=payload)
        assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN"
    for payload, field in (({}, "_schema"), ({"status": "completed"}, "status"),
                           ({"status": "paused"}, "status"), ({"budget": -1}, "budget"),
                           ({"deadline": "2001-01-01T00:00:00Z"}, "deadline"),
                           ({"owner": "me"}, "owner")):
        reply = await api("PUT", path, token=moderator, json=payload)
        assert reply.status == 422 and field in reply.json["field_errors"], (payload, reply.json)
    reply = await api("PUT", path, token=moderator, body=b"[", headers={
        "Content-Type": "application/json"})
    assert reply.status == 400
    for bad in ("nope", UNKNOWN):
        assert (await api("PUT", f"/api/admin/bounties/{bad}", token=moderator,
                          json={"title": "Renamed"})).status == 404
        assert (await api("DELETE", f"/api/admin/bounties/{bad}", token=moderator)).status == 404
    reply = await api("GET", "/api/admin/bounties?status=weird", token=moderator)
    assert reply.status == 422
