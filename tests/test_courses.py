"""The learning center over real HTTP (seed 000 "Additional Features", seed 001 §11 and §13):
the published catalogue with filters, enrolment (free, paid through the embedded test
payment provider, 3-D Secure, declined), my courses with progress, staff course management."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, ADMIN_ID, BUYER, BUYER2, BUYER_ID, CREATOR_ID, MODERATOR

from documents import sessions, users

UNKNOWN = "ffffffffffffffffffffffff"


async def create_course(api, token, **fields) -> dict:
    payload = {"title": "Blender basics", "description": "Your first model",
               "difficulty": "beginner", "duration": 90, "category": "Modeling",
               "thumbnail_url": "https://cdn.example.com/t.png",
               "video_url": "https://cdn.example.com/v.mp4", **fields}
    reply = await api("POST", "/api/admin/courses", token=token, json=payload)
    assert reply.status == 201, reply.json
    return reply.json


async def enroll(api, token, course_id, **body):
    return await api("POST", f"/api/courses/{course_id}/enroll", token=token, json=body)


async def stored(services, course_id) -> dict:
    return await services.db.courses.find_one({"_id": ObjectId(course_id)})


async def new_users(services, count: int) -> list[str]:
    out = []
    for i in range(count):
        user = await users.insert(services.db, users.new_user(
            f"learner{i}@example.com", f"learner{i}", None))
        out.append((await sessions.start_session(services.db, services.settings,
                                                 user))["access_token"])
    return out


# --------------------------------------------------------------------------- staff CRUD

@pytest.mark.gen_test
async def test_admin_creates_updates_and_deletes_a_course(api, tokens, services):
    admin = await tokens(ADMIN)
    made = await create_course(api, admin, instructor_id=CREATOR_ID, tags=["Blender", "blender"])
    assert made["title"] == "Blender basics" and made["difficulty"] == "beginner"
    assert made["is_free"] is True and made["price"] == 0 and made["is_published"] is True
    assert made["instructor"]["id"] == CREATOR_ID and made["enrollment_count"] == 0
    assert made["video_url"] == "https://cdn.example.com/v.mp4" and made["tags"] == ["blender"]
    assert (await stored(services, made["id"]))["price_cents"] == 0

    path = f"/api/admin/courses/{made['id']}"
    reply = await api("PUT", path, token=admin, json={"price": "19.99", "is_published": False})
    assert reply.status == 200, reply.json
    assert reply.json["price"] == 19.99 and reply.json["is_free"] is False
    doc = await stored(services, made["id"])
    assert doc["price_cents"] == 1999 and doc["is_published"] is False
    reply = await api("PUT", path, token=admin, json={"is_free": True})
    assert reply.json["is_free"] is True and reply.json["price"] == 0

    reply = await api("GET", "/api/admin/courses?is_published=false", token=admin)
    assert [c["id"] for c in reply.json["items"]] == [made["id"]]
    assert (await api("GET", "/api/admin/courses?is_published=true", token=admin)).json[
        "total"] == 0
    assert await services.db.admin_actions.count_documents({"target_type": "course"}) == 3

    assert (await api("DELETE", path, token=admin)).status == 204
    assert await stored(services, made["id"]) is None
    assert (await api("DELETE", path, token=admin)).status == 404


@pytest.mark.gen_test
async def test_instructor_defaults_to_the_caller(api, tokens):
    made = await create_course(api, await tokens(ADMIN))
    assert made["instructor_id"] == ADMIN_ID


@pytest.mark.gen_test
async def test_admin_course_routes_need_courses_manage(api, tokens):
    admin, moderator = await tokens(ADMIN), await tokens(MODERATOR)
    buyer = await tokens(BUYER)
    made = await create_course(api, admin)
    path = f"/api/admin/courses/{made['id']}"
    for method, url, payload in (("GET", "/api/admin/courses", None),
                                 ("POST", "/api/admin/courses", {"title": "Mine",
                                                                 "difficulty": "beginner"}),
                                 ("PUT", path, {"title": "Hacked"}), ("DELETE", path, None)):
        assert (await api(method, url, json=payload)).status == 401
        for token in (buyer, moderator):
            reply = await api(method, url, token=token, json=payload)
            assert reply.status == 403 and reply.json["error_code"] == "FORBIDDEN", (method, url)
    reply = await api("GET", f"/api/courses/{made['id']}")
    assert reply.json["title"] == "Blender basics"


@pytest.mark.gen_test
@pytest.mark.parametrize(("change", "field"), [
    ({"difficulty": "expert"}, "difficulty"),
    ({"difficulty": None}, "difficulty"),
    ({"title": "x"}, "title"),
    ({"price": -1}, "price"),
    ({"price": 9.999}, "price"),
    ({"price": 10_000.01}, "price"),
    ({"price": 10, "is_free": True}, "price"),
    ({"is_free": False}, "price"),
    ({"duration": -5}, "duration"),
    ({"duration": "90"}, "duration"),
    ({"video_url": "javascript:alert(1)"}, "video_url"),
    ({"thumbnail_url": "x" * 600}, "thumbnail_url"),
    ({"instructor_id": UNKNOWN}, "instructor_id"),
    ({"instructor_id": "nope"}, "instructor_id"),
    ({"enrollment_count": 5}, "enrollment_count"),
    ({"is_published": "maybe"}, "is_published"),
])
async def test_admin_create_rejects_bad_fields(api, tokens, services, change, field):
    payload = {"title": "Rigging", "difficulty": "advanced", **change}
    reply = await api("POST", "/api/admin/courses", token=await tokens(ADMIN),
                      json=payload)
    assert reply.status == 422, reply.json
    assert field in reply.json["field_errors"]
    assert await services.db.courses.count_documents({}) == 0


@pytest.mark.gen_test
async def test_admin_update_bad_input(api, tokens, services):
    admin = await tokens(ADMIN)
    made = await create_course(api, admin)
    path = f"/api/admin/courses/{made['id']}"
    for payload, field in (({}, "_schema"), ({"is_free": False}, "price"),
                           ({"difficulty": "hard"}, "difficulty"), ({"views": 3}, "views")):
        reply = await api("PUT", path, token=admin, json=payload)
        assert reply.status == 422 and field in reply.json["field_errors"], (payload, reply.json)
    reply = await api("PUT", path, token=admin, body=b"{", headers={
        "Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    reply = await api("POST", "/api/admin/courses", token=admin, body=b"nope", headers={
        "Content-Type": "application/json"})
    assert reply.status == 400
    for bad in ("nope", UNKNOWN):
        assert (await api("PUT", f"/api/admin/courses/{bad}", token=admin,
                          json={"title": "Renamed"})).status == 404
    assert (await stored(services, made["id"]))["title"] == "Blender basics"


# --------------------------------------------------------------------------- catalogue

@pytest.mark.gen_test
async def test_list_shows_published_courses_with_filters(api, tokens):
    admin = await tokens(ADMIN)
    basics = await create_course(api, admin)
    rigging = await create_course(api, admin, title="Character rigging", difficulty="advanced",
                                  category="Animation", price=49.5, tags=["rig"])
    draft = await create_course(api, admin, title="Draft", is_published=False)

    async def ids(query: str = ""):
        reply = await api("GET", f"/api/courses{query}")
        assert reply.status == 200, reply.json
        assert all("video_url" not in c for c in reply.json["items"])
        return [c["id"] for c in reply.json["items"]]

    assert await ids() == [rigging["id"], basics["id"]]
    assert await ids("?difficulty=advanced") == [rigging["id"]]
    assert await ids("?category=animation") == [rigging["id"]]
    assert await ids("?is_free=true") == [basics["id"]]
    assert await ids("?is_free=false") == [rigging["id"]]
    assert await ids("?search=RIG") == [rigging["id"]]
    assert await ids("?difficulty=&limit=1&page=2") == [basics["id"]]
    reply = await api("GET", "/api/courses?limit=1")
    assert (reply.json["total"], reply.json["pages"]) == (2, 2)
    assert reply.json["items"][0]["price"] == 49.5

    reply = await api("GET", f"/api/courses/{draft['id']}")
    assert reply.status == 404 and reply.json["reason"] == "COURSE_NOT_FOUND"
    assert (await api("GET", f"/api/courses/{draft['id']}", token=admin)).status == 200
    for bad in ("nope", UNKNOWN):
        assert (await api("GET", f"/api/courses/{bad}")).status == 404


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["difficulty=expert", "is_free=perhaps", "limit=0",
                                   "page=0", "sort=cheapest"])
async def test_list_rejects_bad_query(api, query):
    reply = await api("GET", f"/api/courses?{query}")
    assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", query


# --------------------------------------------------------------------------- enrolment

@pytest.mark.gen_test
async def test_enroll_in_a_free_course_and_list_mine(api, tokens, services):
    buyer = await tokens(BUYER)
    course = await create_course(api, await tokens(ADMIN))
    before = (await api("GET", f"/api/courses/{course['id']}", token=buyer)).json
    assert before["is_enrolled"] is False and "video_url" not in before

    reply = await enroll(api, buyer, course["id"])
    assert reply.status == 201, reply.json
    assert reply.json["is_enrolled"] is True and reply.json["progress"] == 0
    assert reply.json["video_url"] == "https://cdn.example.com/v.mp4"
    assert reply.json["enrollment_count"] == 1
    assert (await stored(services, course["id"]))["enrollment_count"] == 1

    reply = await enroll(api, buyer, course["id"])
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_ENROLLED"
    assert (await stored(services, course["id"]))["enrollment_count"] == 1

    reply = await api("GET", "/api/users/me/courses", token=buyer)
    assert reply.status == 200
    assert [c["id"] for c in reply.json["items"]] == [course["id"]]
    mine = reply.json["items"][0]
    assert mine["progress"] == 0 and mine["enrolled_at"].endswith("Z")
    assert mine["completed_at"] is None and mine["video_url"]
    assert reply.json["total"] == 1 and reply.json["page"] == 1
    reply = await api("GET", "/api/users/me/courses", token=await tokens(BUYER2))
    assert reply.json["items"] == [] and reply.json["total"] == 0

    detail = (await api("GET", f"/api/courses/{course['id']}", token=buyer)).json
    assert detail["is_enrolled"] is True and detail["video_url"]


@pytest.mark.gen_test
async def test_enroll_auth_and_bad_input(api, tokens):
    buyer = await tokens(BUYER)
    admin = await tokens(ADMIN)
    course = await create_course(api, admin)
    draft = await create_course(api, admin, title="Draft", is_published=False)
    assert (await enroll(api, None, course["id"])).status == 401
    assert (await api("GET", "/api/users/me/courses")).status == 401
    for bad in ("nope", UNKNOWN, draft["id"]):
        reply = await enroll(api, buyer, bad)
        assert reply.status == 404 and reply.json["error_code"] in ("COURSE_NOT_FOUND",
                                                                    "NOT_FOUND")
    reply = await api("POST", f"/api/courses/{course['id']}/enroll", token=buyer, body=b"{x",
                      headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["error_code"] == "BAD_REQUEST"
    reply = await enroll(api, buyer, course["id"], coupon="FREE")
    assert reply.status == 422 and "coupon" in reply.json["field_errors"]
    reply = await enroll(api, buyer, course["id"], payment_method_token=7)
    assert reply.status == 422 and "payment_method_token" in reply.json["field_errors"]
    assert (await api("GET", "/api/users/me/courses?limit=0", token=buyer)).status == 422
    reply = await enroll(api, admin, draft["id"])
    assert reply.status == 409 and reply.json["error_code"] == "COURSE_NOT_PUBLISHED"


@pytest.mark.gen_test
async def test_paid_course_needs_a_successful_payment(api, tokens, services):
    buyer = await tokens(BUYER)
    course = await create_course(api, await tokens(ADMIN), price=29.99)

    reply = await enroll(api, buyer, course["id"])
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_REQUIRED"
    reply = await enroll(api, buyer, course["id"], payment_method_token="tok_chargeDeclined")
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_FAILED"
    assert reply.json["decline_code"] == "generic_decline"
    reply = await enroll(api, buyer, course["id"], payment_method_token="tok_unknown")
    assert reply.status == 402
    assert await services.db.course_enrollments.count_documents({}) == 0
    assert (await stored(services, course["id"]))["enrollment_count"] == 0

    reply = await enroll(api, buyer, course["id"], payment_method_token="tok_visa")
    assert reply.status == 201, reply.json
    assert reply.json["is_enrolled"] is True and reply.json["enrollment_count"] == 1
    enrollment = await services.db.course_enrollments.find_one({"user_id": ObjectId(BUYER_ID)})
    assert enrollment["price_paid_cents"] == 2999
    intent = await services.payments.retrieve_payment_intent(enrollment["payment_intent_id"])
    assert intent.status == "succeeded" and intent.amount_cents == 2999
    assert intent.metadata["course_id"] == course["id"]

    reply = await enroll(api, buyer, course["id"], payment_method_token="tok_visa")
    assert reply.status == 409 and reply.json["error_code"] == "ALREADY_ENROLLED"


@pytest.mark.gen_test
async def test_three_d_secure_then_payment_intent_id(api, tokens, services):
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    course = await create_course(api, await tokens(ADMIN), price=5)
    reply = await enroll(api, buyer, course["id"],
                         payment_method_token="tok_threeDSecure2Required")
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_REQUIRES_ACTION"
    intent_id = reply.json["payment_intent_id"]
    assert reply.json["client_secret"] and reply.json["next_action"]
    assert await services.db.course_enrollments.count_documents({}) == 0

    reply = await enroll(api, buyer2, course["id"], payment_intent_id=intent_id)
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_MISMATCH"
    reply = await enroll(api, buyer, course["id"], payment_intent_id=intent_id)
    assert reply.status == 201, reply.json
    assert (await stored(services, course["id"]))["enrollment_count"] == 1


@pytest.mark.gen_test
async def test_delete_refused_while_people_are_enrolled(api, tokens, services):
    admin = await tokens(ADMIN)
    course = await create_course(api, admin)
    assert (await enroll(api, await tokens(BUYER), course["id"])).status == 201
    reply = await api("DELETE", f"/api/admin/courses/{course['id']}", token=admin)
    assert reply.status == 409 and reply.json["error_code"] == "COURSE_HAS_ENROLLMENTS"
    assert await stored(services, course["id"]) is not None


@pytest.mark.gen_test
async def test_enrollment_count_is_exact_under_concurrency(api, tokens, services):
    course = await create_course(api, await tokens(ADMIN))
    learners = await new_users(services, 8)
    replies = await asyncio.gather(*[enroll(api, t, course["id"]) for t in learners * 2])
    assert sorted(r.status for r in replies) == [201] * 8 + [409] * 8
    assert (await stored(services, course["id"]))["enrollment_count"] == 8
    assert await services.db.course_enrollments.count_documents({}) == 8


@pytest.mark.gen_test
async def test_racing_paid_enrollments_charge_once(api, tokens, services):
    buyer = await tokens(BUYER)
    course = await create_course(api, await tokens(ADMIN), price=12)
    replies = await asyncio.gather(*[
        enroll(api, buyer, course["id"], payment_method_token="tok_visa") for _ in range(4)])
    statuses = sorted(r.status for r in replies)
    assert statuses[0] == 201 and statuses[1:] == [409] * 3
    assert (await stored(services, course["id"]))["enrollment_count"] == 1
    enrollment = await services.db.course_enrollments.find_one({})
    kept = enrollment["payment_intent_id"]
    charged = [i for i in services.payments._intents.values() if i["status"] == "succeeded"]
    assert sum(i["amount_cents"] - i["refunded_cents"] for i in charged) == 1200
    assert all(i["refunded_cents"] == 0 for i in charged if i["id"] == kept)
