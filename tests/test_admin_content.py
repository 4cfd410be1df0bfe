"""Admin site content over real HTTP (seed 001 §13; seed 000 §7): testimonials, slider,
platform settings, email templates, sending and history, announcements."""
from __future__ import annotations

import asyncio
import json

import pytest
from bson import ObjectId
from conftest import eventually
from content_support import UNKNOWN_ID
from demo_accounts import (
    ADMIN,
    ADMIN_ID,
    BUYER,
    BUYER2,
    BUYER_ID,
    CREATOR,
    CREATOR2,
    CREATOR_ID,
    DEMO_PASSWORD,
    MODERATOR,
)
from tornado.websocket import websocket_connect

from documents.common import utcnow
from tests.mail_support import email_status

pytestmark = pytest.mark.usefixtures("no_demo_content")  # counts start from zero


@pytest.fixture
def admin(tokens, io_loop):
    return io_loop.run_sync(lambda: tokens(ADMIN))


def raw_json(api, method, path, token, text):
    return api(method, path, token=token, body=text, headers={"Content-Type": "application/json"})


# --------------------------------------------------------------------------- auth matrix

ADMIN_ROUTES = [
    ("GET", "/api/admin/testimonials", None),
    ("POST", "/api/admin/testimonials", {"author_name": "A", "content": "B"}),
    ("PUT", f"/api/admin/testimonials/{UNKNOWN_ID}", {"content": "B"}),
    ("DELETE", f"/api/admin/testimonials/{UNKNOWN_ID}", None),
    ("PUT", f"/api/admin/testimonials/{UNKNOWN_ID}/approve", {}),
    ("GET", "/api/admin/slider", None),
    ("POST", "/api/admin/slider", {"title": "A", "image_url": "/a.png"}),
    ("PUT", f"/api/admin/slider/{UNKNOWN_ID}", {"title": "B"}),
    ("DELETE", f"/api/admin/slider/{UNKNOWN_ID}", None),
    ("GET", "/api/admin/settings", None),
    ("PUT", "/api/admin/settings", {"site_name": "X"}),
    ("GET", "/api/admin/emails/templates", None),
    ("POST", "/api/admin/emails/templates", {"name": "n", "subject": "s", "body": "b"}),
    ("PUT", f"/api/admin/emails/templates/{UNKNOWN_ID}", {"name": "n"}),
    ("DELETE", f"/api/admin/emails/templates/{UNKNOWN_ID}", None),
    ("POST", "/api/admin/emails/send", {"email": "x@y.co", "subject": "s", "body": "b"}),
    ("GET", "/api/admin/emails/history", None),
    ("POST", "/api/admin/announcements", {"title": "t", "message": "m"}),
]


@pytest.mark.gen_test(timeout=60)
async def test_admin_routes_need_staff_with_the_permission(api, tokens, services):
    buyer, moderator = await tokens(BUYER), await tokens(MODERATOR)
    for method, path, payload in ADMIN_ROUTES:
        anonymous = await api(method, path, json=payload)
        assert anonymous.status == 401, (method, path)
        for token in (buyer, moderator):
            reply = await api(method, path, json=payload, token=token)
            assert reply.status == 403, (method, path, reply.json)
            assert reply.json["error_code"] == "FORBIDDEN"
    for name in ("testimonials", "slider_slides", "platform_settings", "email_templates",
                 "announcements", "emails", "notifications"):
        assert await services.db[name].count_documents({}) == 0, name


# --------------------------------------------------------------------------- testimonials

@pytest.mark.gen_test
async def test_testimonial_crud_and_approval(api, admin, services):
    created = await api("POST", "/api/admin/testimonials", token=admin,
                        json={"author_name": " Ada ", "author_title": "Game artist",
                              "content": "Sold 40 models here.", "user_id": CREATOR_ID,
                              "avatar_url": "https://cdn.example.com/a.png"})
    assert created.status == 201, created.json
    t = created.json
    assert t["author_name"] == "Ada" and t["rating"] == 5 and t["user_id"] == CREATOR_ID
    assert t["is_approved"] is False and t["is_featured"] is False and t["order"] == 0
    stored = await services.db.testimonials.find_one({"_id": ObjectId(t["id"])})
    assert stored["user_id"] == ObjectId(CREATOR_ID)
    assert (await api("GET", "/api/testimonials")).json["items"] == []

    listed = await api("GET", "/api/admin/testimonials?status=pending", token=admin)
    assert listed.status == 200
    assert [x["id"] for x in listed.json["items"]] == [t["id"]]
    assert {k: listed.json[k] for k in ("total", "page", "limit", "pages")} == {
        "total": 1, "page": 1, "limit": 20, "pages": 1}
    assert (await api("GET", "/api/admin/testimonials?status=approved",
                      token=admin)).json["total"] == 0
    assert (await api("GET", "/api/admin/testimonials?search=40%20models",
                      token=admin)).json["total"] == 1

    approved = await api("PUT", f"/api/admin/testimonials/{t['id']}/approve", token=admin)
    assert approved.status == 200 and approved.json["is_approved"] is True
    public = (await api("GET", "/api/testimonials")).json["items"]
    assert [x["id"] for x in public] == [t["id"]]

    updated = await api("PUT", f"/api/admin/testimonials/{t['id']}", token=admin,
                        json={"rating": 4, "is_featured": True, "user_id": None})
    assert updated.status == 200
    assert updated.json["rating"] == 4 and updated.json["is_featured"] is True
    assert updated.json["user_id"] is None and updated.json["author_name"] == "Ada"

    withdrawn = await api("PUT", f"/api/admin/testimonials/{t['id']}/approve", token=admin,
                          json={"is_approved": False})
    assert withdrawn.json["is_approved"] is False
    assert (await api("GET", "/api/testimonials")).json["items"] == []

    deleted = await api("DELETE", f"/api/admin/testimonials/{t['id']}", token=admin)
    assert deleted.status == 204
    assert await services.db.testimonials.count_documents({}) == 0
    again = await api("DELETE", f"/api/admin/testimonials/{t['id']}", token=admin)
    assert again.status == 404


@pytest.mark.gen_test
async def test_testimonial_bad_input(api, admin, services):
    base = {"author_name": "A", "content": "B"}
    cases = [({**base, "rating": 0}, 422), ({**base, "rating": 6}, 422),
             ({**base, "rating": "5"}, 422), ({**base, "rating": 4.5}, 422),
             ({"author_name": "A"}, 422), ({**base, "stars": 5}, 422),
             ({**base, "user_id": "abc"}, 422), ({**base, "user_id": UNKNOWN_ID}, 422),
             ({**base, "avatar_url": "javascript:alert(1)"}, 422),
             ({**base, "is_approved": "perhaps"}, 422), ({**base, "content": ""}, 422)]
    for payload, status in cases:
        reply = await api("POST", "/api/admin/testimonials", token=admin, json=payload)
        assert reply.status == status, (payload, reply.json)
        assert reply.json["error_code"] == "VALIDATION_ERROR" and reply.json["field_errors"]
    malformed = await raw_json(api, "POST", "/api/admin/testimonials", admin, '{"author_name":')
    assert malformed.status == 400 and malformed.json["error_code"] == "BAD_REQUEST"
    assert await services.db.testimonials.count_documents({}) == 0

    one = (await api("POST", "/api/admin/testimonials", token=admin, json=base)).json
    for path in (f"/api/admin/testimonials/{UNKNOWN_ID}", "/api/admin/testimonials/nope"):
        assert (await api("PUT", path, token=admin, json={"rating": 3})).status == 404
        assert (await api("PUT", path + "/approve", token=admin)).status == 404
        assert (await api("DELETE", path, token=admin)).status == 404
    assert (await api("PUT", f"/api/admin/testimonials/{one['id']}", token=admin,
                      json={})).status == 422
    assert (await api("PUT", f"/api/admin/testimonials/{one['id']}", token=admin,
                      json={"rating": 9})).status == 422
    assert (await api("PUT", f"/api/admin/testimonials/{one['id']}/approve", token=admin,
                      json={"approved": True})).status == 422
    assert (await api("GET", "/api/admin/testimonials?status=maybe", token=admin)).status == 422
    stored = await services.db.testimonials.find_one({})
    assert stored["rating"] == 5 and stored["is_approved"] is False


# --------------------------------------------------------------------------- slider

@pytest.mark.gen_test
async def test_slider_crud(api, admin, services):
    first = await api("POST", "/api/admin/slider", token=admin,
                      json={"title": "Summer sale", "subtitle": "30% off",
                            "image_url": "/files/images/a.png", "link_url": "/marketplace",
                            "cta_text": "Shop", "order": 2,
                            "starts_at": "2020-01-01T00:00:00Z", "ends_at": None})
    assert first.status == 201, first.json
    s1 = first.json
    assert s1["is_active"] is True and s1["starts_at"] == "2020-01-01T00:00:00.000Z"
    assert s1["image_url"] == services.settings.public_url + "/files/images/a.png"
    second = await api("POST", "/api/admin/slider", token=admin,
                       json={"title": "New", "image_url": "https://cdn.example.com/b.png",
                             "order": 1})
    s2 = second.json
    listed = await api("GET", "/api/admin/slider", token=admin)
    assert [s["id"] for s in listed.json["items"]] == [s2["id"], s1["id"]]
    home = (await api("GET", "/api/stats/homepage")).json["slides"]
    assert [s["id"] for s in home] == [s2["id"], s1["id"]]

    off = await api("PUT", f"/api/admin/slider/{s2['id']}", token=admin,
                    json={"is_active": False, "title": "Renamed"})
    assert off.status == 200 and off.json["title"] == "Renamed" and off.json["is_active"] is False
    home = (await api("GET", "/api/stats/homepage")).json["slides"]
    assert [s["id"] for s in home] == [s1["id"]]

    assert (await api("DELETE", f"/api/admin/slider/{s1['id']}", token=admin)).status == 204
    assert (await api("DELETE", f"/api/admin/slider/{s1['id']}", token=admin)).status == 404
    assert await services.db.slider_slides.count_documents({}) == 1


@pytest.mark.gen_test
async def test_slider_bad_input(api, admin, services):
    base = {"title": "T", "image_url": "/a.png"}
    cases = [{"title": "T"}, {**base, "image_url": "ftp://x/a.png"},
             {**base, "link_url": "//evil.example"}, {**base, "order": -1},
             {**base, "starts_at": "2020-01-01T00:00:00"},  # no zone
             {**base, "starts_at": "yesterday"},
             {**base, "starts_at": "2024-02-01T00:00:00Z", "ends_at": "2024-01-01T00:00:00Z"},
             {**base, "colour": "red"}, {**base, "cta_text": "x" * 41}]
    for payload in cases:
        reply = await api("POST", "/api/admin/slider", token=admin, json=payload)
        assert reply.status == 422, (payload, reply.json)
    assert (await raw_json(api, "POST", "/api/admin/slider", admin, "[1,")).status == 400
    assert await services.db.slider_slides.count_documents({}) == 0
    slide = (await api("POST", "/api/admin/slider", token=admin,
                       json={**base, "starts_at": "2030-01-01T00:00:00Z"})).json
    inverted = await api("PUT", f"/api/admin/slider/{slide['id']}", token=admin,
                         json={"ends_at": "2029-01-01T00:00:00Z"})
    assert inverted.status == 422 and "ends_at" in inverted.json["field_errors"]
    assert (await api("PUT", f"/api/admin/slider/{slide['id']}", token=admin,
                      json={})).status == 422
    for ref in (UNKNOWN_ID, "xyz"):
        assert (await api("PUT", f"/api/admin/slider/{ref}", token=admin,
                          json={"title": "x"})).status == 404


# --------------------------------------------------------------------------- settings

@pytest.mark.gen_test
async def test_platform_settings_partial_updates(api, admin, services):
    got = await api("GET", "/api/admin/settings", token=admin)
    assert got.status == 200
    assert got.json["platform_fee_percent"] == 7.5 and got.json["max_upload_mb"] == 100
    assert got.json["maintenance_mode"] is False and got.json["allow_registrations"] is True
    assert got.json["id"] == "platform" and got.json["updated_by"] is None

    put = await api("PUT", "/api/admin/settings", token=admin,
                    json={"site_name": "HWC3D Beta", "maintenance_mode": True,
                          "featured_categories": ["vehicles", "Sci-Fi"],
                          "platform_fee_percent": 7.5})
    assert put.status == 200, put.json
    body = put.json
    assert body["site_name"] == "HWC3D Beta" and body["maintenance_mode"] is True
    assert body["featured_categories"] == ["Vehicles", "Sci-Fi"]
    assert body["allow_registrations"] is True and body["platform_fee_percent"] == 7.5
    assert body["updated_by"] == ADMIN_ID and body["updated_at"].endswith("Z")
    stored = await services.db.platform_settings.find_one({"_id": "platform"})
    assert stored["site_name"] == "HWC3D Beta" and "platform_fee_percent" not in stored

    second = await api("PUT", "/api/admin/settings", token=admin, json={"max_upload_mb": 50})
    assert second.json["max_upload_mb"] == 50 and second.json["site_name"] == "HWC3D Beta"
    assert (await api("GET", "/api/admin/settings", token=admin)).json == second.json
    audit = await services.db.admin_actions.count_documents({"action_type": "settings_updated"})
    assert audit == 2


@pytest.mark.gen_test
async def test_platform_settings_bad_input(api, admin, services):
    cases = [{"platform_fee_percent": 10}, {"platform_fee_percent": 7.5}, {},
             {"max_upload_mb": 500}, {"max_upload_mb": 0}, {"max_upload_mb": "5"},
             {"featured_categories": ["Nope"]}, {"featured_categories": "Vehicles"},
             {"support_email": "nobody"}, {"maintenance_mode": "maybe"},
             {"site_name": ""}, {"theme": "dark"}, {"updated_by": ADMIN_ID}]
    for payload in cases:
        reply = await api("PUT", "/api/admin/settings", token=admin, json=payload)
        assert reply.status == 422, (payload, reply.json)
    assert (await raw_json(api, "PUT", "/api/admin/settings", admin, "{{")).status == 400
    assert await services.db.platform_settings.count_documents({}) == 0


# --------------------------------------------------------------------------- templates

@pytest.mark.gen_test
async def test_email_template_crud(api, admin, services):
    made = await api("POST", "/api/admin/emails/templates", token=admin,
                     json={"name": "Welcome", "subject": "Welcome to {{site_name}}",
                           "body": "Hi {{ full_name }} (@{{username}})!", "category": "marketing"})
    assert made.status == 201, made.json
    tpl = made.json
    assert tpl["placeholders"] == ["site_name", "full_name", "username"]
    assert "name_lower" not in tpl
    dup = await api("POST", "/api/admin/emails/templates", token=admin,
                    json={"name": "WELCOME", "subject": "s", "body": "b"})
    assert dup.status == 409 and dup.json["error_code"] == "TEMPLATE_EXISTS"
    other = (await api("POST", "/api/admin/emails/templates", token=admin,
                       json={"name": "Digest", "subject": "s", "body": "b",
                             "category": "newsletter"})).json
    assert other["category"] == "newsletter"
    listed = await api("GET", "/api/admin/emails/templates", token=admin)
    assert [t["name"] for t in listed.json["items"]] == ["Digest", "Welcome"]
    only = await api("GET", "/api/admin/emails/templates?category=newsletter", token=admin)
    assert [t["name"] for t in only.json["items"]] == ["Digest"]

    clash = await api("PUT", f"/api/admin/emails/templates/{other['id']}", token=admin,
                      json={"name": "welcome"})
    assert clash.status == 409
    changed = await api("PUT", f"/api/admin/emails/templates/{other['id']}", token=admin,
                        json={"body": "Top models for {{username}}"})
    assert changed.status == 200 and changed.json["placeholders"] == ["username"]
    assert (await api("DELETE", f"/api/admin/emails/templates/{other['id']}",
                      token=admin)).status == 204
    assert await services.db.email_templates.count_documents({}) == 1


@pytest.mark.gen_test
async def test_email_template_bad_input(api, admin, services):
    base = {"name": "N", "subject": "S", "body": "B"}
    cases = [{**base, "body": "Hi {{password}}"}, {**base, "subject": "{{ token }}"},
             {**base, "category": "spam"}, {"name": "N", "subject": "S"},
             {**base, "html": "<p>"}, {**base, "name": ""}]
    for payload in cases:
        reply = await api("POST", "/api/admin/emails/templates", token=admin, json=payload)
        assert reply.status == 422, (payload, reply.json)
    assert (await raw_json(api, "POST", "/api/admin/emails/templates", admin, "x")).status == 400
    assert await services.db.email_templates.count_documents({}) == 0
    for ref in (UNKNOWN_ID, "bad-id"):
        path = f"/api/admin/emails/templates/{ref}"
        assert (await api("PUT", path, token=admin, json={"name": "x"})).status == 404
        assert (await api("DELETE", path, token=admin)).status == 404
    assert (await api("GET", "/api/admin/emails/templates?category=x",
                      token=admin)).status == 422


# --------------------------------------------------------------------------- sending

@pytest.mark.gen_test
async def test_send_email_to_a_user_with_a_template(api, admin, services):
    db = services.db
    tpl = (await api("POST", "/api/admin/emails/templates", token=admin,
                     json={"name": "Hello", "subject": "Hello {{username}}",
                           "body": "Dear {{full_name}}, welcome to {{site_name}}.",
                           "category": "announcement"})).json
    buyer = await db.users.find_one({"_id": ObjectId(BUYER_ID)})
    sent = await api("POST", "/api/admin/emails/send", token=admin,
                     json={"user_id": BUYER_ID, "template_id": tpl["id"]})
    assert sent.status == 200, sent.json
    assert sent.json["queued"] == 1 and sent.json["recipients"] == 1
    record = await email_status(db, ObjectId(sent.json["email_ids"][0]), "sent")
    assert record["to"] == BUYER and record["subject"] == f"Hello {buyer['username']}"
    assert record["text"].startswith(f"Dear {buyer['full_name']}, welcome to HWC3D.\n")
    assert record["category"] == "announcement" and record["status"] == "sent"
    action = await db.admin_actions.find_one({"action_type": "emails_sent"})
    assert action["details"] == {"recipients": 1, "subject": "Hello {{username}}",
                                 "segment": None, "template_id": tpl["id"]}

    history = await api("GET", f"/api/admin/emails/history?to={BUYER}", token=admin)
    assert history.status == 200
    assert [e["id"] for e in history.json["items"]] == sent.json["email_ids"]
    assert history.json["items"][0]["subject"] == record["subject"]
    assert history.json["total"] == 1 and history.json["pages"] == 1


@pytest.mark.gen_test
async def test_send_email_to_a_segment_and_an_address(api, admin, services):
    db = services.db
    await db.users.update_one({"email": CREATOR2}, {"$set": {"is_banned": True}})
    creators = [u["email"] async for u in db.users.find(
        {"user_type": "creator", "is_banned": {"$ne": True}, "deleted_at": None,
         "staff_role": None})]
    assert creators == [CREATOR]
    sent = await api("POST", "/api/admin/emails/send", token=admin,
                     json={"segment": "creators", "subject": "News for {{username}}",
                           "body": "Hello {{full_name}}", "category": "newsletter"})
    assert sent.status == 200 and sent.json["recipients"] == len(creators)
    assert sorted([e["to"] async for e in db.emails.find({"category": "newsletter"})]) == creators

    everyone = await api("POST", "/api/admin/emails/send", token=admin,
                         json={"segment": "all", "subject": "All hands", "body": "Hi"})
    live = await db.users.count_documents({"is_banned": {"$ne": True}, "deleted_at": None})
    assert everyone.json["queued"] == live == 5

    stranger = await api("POST", "/api/admin/emails/send", token=admin,
                         json={"email": "Someone@Example.com", "subject": "Hi {{username}}",
                               "body": "Hello {{full_name}}!"})
    assert stranger.status == 200
    mail = await db.emails.find_one({"to": "someone@example.com"})
    assert mail["subject"] == "Hi" and mail["text"].startswith("Hello !\n")

    for email_id in [*sent.json["email_ids"], *everyone.json["email_ids"]]:
        await email_status(db, ObjectId(email_id), "sent")
    page = await api("GET", "/api/admin/emails/history?limit=2&page=2", token=admin)
    total = await db.emails.count_documents({})
    assert page.json["total"] == total == 1 + 5 + 1 and page.json["pages"] == 4
    assert len(page.json["items"]) == 2
    news = await api("GET", "/api/admin/emails/history?category=newsletter&status=sent",
                     token=admin)
    assert news.json["total"] == 1
    failed = await api("GET", "/api/admin/emails/history?status=failed", token=admin)
    assert failed.json["total"] == 0


@pytest.mark.gen_test
async def test_history_never_shows_secrets(api, admin, services):
    reply = await api("POST", "/api/auth/forgot-password", json={"email": BUYER})
    assert reply.status in (200, 202), reply.json
    stored = await eventually(lambda: services.db.emails.find_one(
        {"to": BUYER, "category": "password_reset"}), what="the password reset email")
    history = await api("GET", "/api/admin/emails/history?category=password_reset", token=admin)
    item = history.json["items"][0]
    assert item["id"] == str(stored["_id"]) and item["redacted"] is True
    assert item["text"] is None and item["html"] is None and item["subject"] == stored["subject"]


@pytest.mark.gen_test
async def test_send_email_bad_input(api, admin, services):
    tpl = (await api("POST", "/api/admin/emails/templates", token=admin,
                     json={"name": "T", "subject": "S", "body": "B"})).json
    cases = [
        ({"subject": "s", "body": "b"}, 422),
        ({"user_id": BUYER_ID, "email": "a@b.co", "subject": "s", "body": "b"}, 422),
        ({"user_id": BUYER_ID, "template_id": tpl["id"], "subject": "s"}, 422),
        ({"user_id": BUYER_ID, "subject": "s"}, 422),
        ({"segment": "whales", "subject": "s", "body": "b"}, 422),
        ({"email": "nope", "subject": "s", "body": "b"}, 422),
        ({"email": "a@b.co", "subject": "{{secret}}", "body": "b"}, 422),
        ({"email": "a@b.co", "subject": "s", "body": "b", "category": "spam"}, 422),
        ({"email": "a@b.co", "subject": "s", "body": "b", "cc": "x@y.co"}, 422),
        ({"user_id": UNKNOWN_ID, "subject": "s", "body": "b"}, 404),
        ({"user_id": "bad", "subject": "s", "body": "b"}, 404),
        ({"user_id": BUYER_ID, "template_id": UNKNOWN_ID}, 404),
        ({"user_id": BUYER_ID, "template_id": "bad"}, 404),
    ]
    for payload, status in cases:
        reply = await api("POST", "/api/admin/emails/send", token=admin, json=payload)
        assert reply.status == status, (payload, reply.json)
    assert (await raw_json(api, "POST", "/api/admin/emails/send", admin, "{")).status == 400
    for qs in ("status=lost", "page=0", "limit=0"):
        assert (await api("GET", f"/api/admin/emails/history?{qs}", token=admin)).status == 422
    assert await services.db.emails.count_documents({}) == 0


async def add_users(db, count: int, user_type: str = "buyer") -> None:
    """Insert `count` plain users at once (the in-memory store checks unique indexes in
    quadratic time, so this test's store drops them first: they play no part here)."""
    await db.users.drop_indexes()
    now = utcnow()
    await db.users.insert_many([
        {"email": f"bulk{i}@example.com", "username": f"bulk{i}", "username_lower": f"bulk{i}",
         "full_name": f"Bulk {i}", "user_type": user_type, "staff_role": None,
         "is_active": True, "is_banned": False, "created_at": now} for i in range(count)])


@pytest.mark.gen_test(timeout=60)
async def test_send_email_cap(api, admin, services):
    await add_users(services.db, 1000)  # 1,006 live users in all, 1,002 plain buyers
    reply = await api("POST", "/api/admin/emails/send", token=admin,
                      json={"segment": "buyers", "subject": "s", "body": "b"})
    assert reply.status == 422 and "segment" in reply.json["field_errors"]
    assert "1002 recipients" in reply.json["field_errors"]["segment"][0]
    assert await services.db.emails.count_documents({}) == 0


# --------------------------------------------------------------------------- announcements

async def next_event(conn, type, timeout=5.0):
    async def read():
        while True:
            raw = await conn.read_message()
            assert raw is not None, "socket closed"
            frame = json.loads(raw)
            if frame.get("type") == type:
                return frame
    return await asyncio.wait_for(read(), timeout)


@pytest.mark.gen_test
async def test_announcement_notifies_each_targeted_user(api, admin, services, tokens, base_url):
    db = services.db
    url = base_url.replace("http", "ws", 1) + f"/ws/notifications?token={await tokens(BUYER)}"
    conn = await websocket_connect(url)
    try:
        await conn.write_message(json.dumps({"type": "ping"}))
        await next_event(conn, "pong")
        reply = await api("POST", "/api/admin/announcements", token=admin,
                          json={"title": "New Feature Launch",
                                "message": "We've added community features!", "target": "all",
                                "action_url": "/community"})
        assert reply.status == 201, reply.json
        frame = await next_event(conn, "announcement")
    finally:
        conn.close()
    live = [u["_id"] async for u in db.users.find({"deleted_at": None})]
    assert reply.json["count"] == reply.json["recipient_count"] == len(live) == 6
    assert reply.json["target"] == "all" and reply.json["created_by"] == ADMIN_ID
    notes = await db.notifications.find({"type": "announcement"}).to_list(None)
    assert sorted(n["user_id"] for n in notes) == sorted(live)
    assert all(n["title"] == "New Feature Launch" and n["action_url"] == "/community"
               and n["data"]["announcement_id"] == reply.json["id"] for n in notes)
    assert frame["channel"] == f"notifications:{BUYER_ID}"
    assert frame["data"]["message"] == "We've added community features!"
    listed = await api("GET", "/api/notifications", token=await tokens(BUYER2))
    assert any(n["type"] == "announcement" for n in listed.json["items"])
    stored = await db.announcements.find_one({"_id": ObjectId(reply.json["id"])})
    assert stored["recipient_count"] == 6


@pytest.mark.gen_test
async def test_announcement_targets_and_bad_input(api, admin, services):
    db = services.db
    creators = await api("POST", "/api/admin/announcements", token=admin,
                         json={"title": "Creators", "message": "Payouts are faster",
                               "target": "creators"})
    assert creators.status == 201 and creators.json["count"] == 2
    notified = {n["user_id"] async for n in db.notifications.find({"title": "Creators"})}
    expected = {u["_id"] async for u in db.users.find({"user_type": "creator",
                                                       "staff_role": None})}
    assert notified == expected and ObjectId(CREATOR_ID) in notified
    action = await db.admin_actions.find_one({"action_type": "announcement_sent"})
    assert (action["target_type"], str(action["target_id"])) == ("announcement",
                                                                 creators.json["id"])
    assert action["details"] == {"target": "creators", "count": 2}
    buyers = await api("POST", "/api/admin/announcements", token=admin,
                       json={"title": "Buyers", "message": "Sale", "target": "buyers"})
    assert buyers.json["count"] == 2  # buyer and buyer2; staff accounts are not "buyers"
    assert ObjectId(ADMIN_ID) not in {n["user_id"] async for n in db.notifications.find(
        {"title": "Buyers"})}
    before = await db.notifications.count_documents({})
    cases = [{"message": "m"}, {"title": "t"}, {"title": "t", "message": "m", "target": "vips"},
             {"title": "t", "message": "m", "urgent": True}, {"title": "", "message": "m"},
             {"title": "t", "message": "m" * 1001}]
    for payload in cases:
        reply = await api("POST", "/api/admin/announcements", token=admin, json=payload)
        assert reply.status == 422, (payload, reply.json)
    assert (await raw_json(api, "POST", "/api/admin/announcements", admin, "{")).status == 400
    assert await db.notifications.count_documents({}) == before


@pytest.mark.gen_test(timeout=60)
async def test_announcement_cap(api, admin, services):
    await add_users(services.db, 5000, "creator")
    reply = await api("POST", "/api/admin/announcements", token=admin,
                      json={"title": "t", "message": "m", "target": "creators"})
    assert reply.status == 422 and "target" in reply.json["field_errors"]
    assert await services.db.notifications.count_documents({}) == 0
    assert await services.db.announcements.count_documents({}) == 0


@pytest.mark.gen_test
async def test_admin_with_a_granted_permission(api, tokens, services):
    """A moderator granted `emails.send` may send and read the history, not manage content."""
    await services.db.users.update_one({"email": MODERATOR},
                                       {"$set": {"permissions": ["emails.send"]}})
    token = await tokens(MODERATOR)
    sent = await api("POST", "/api/admin/emails/send", token=token,
                     json={"email": "x@example.com", "subject": "s", "body": "b"})
    assert sent.status == 200
    assert (await api("GET", "/api/admin/emails/history", token=token)).json["total"] == 1
    assert (await api("GET", "/api/admin/testimonials", token=token)).status == 403
    assert (await api("GET", "/api/admin/settings", token=await tokens(CREATOR))).status == 403


@pytest.mark.gen_test
async def test_closing_registrations_stops_new_accounts_but_not_sign_ins(api, tokens, services):
    admin = await tokens(ADMIN)
    reply = await api("PUT", "/api/admin/settings", token=admin,
                      json={"allow_registrations": False})
    assert reply.status == 200 and reply.json["allow_registrations"] is False
    account = {"email": "late@example.com", "username": "latecomer", "password": "Late1234pass"}
    reply = await api("POST", "/api/auth/register", json=account)
    assert reply.status == 403 and reply.json["error_code"] == "REGISTRATIONS_CLOSED"
    assert await services.db.users.count_documents({"email": "late@example.com"}) == 0
    login = await api("POST", "/api/auth/login",
                      json={"email": BUYER, "password": DEMO_PASSWORD})
    assert login.status == 200

    await api("PUT", "/api/admin/settings", token=admin, json={"allow_registrations": True})
    assert (await api("POST", "/api/auth/register", json=account)).status == 201
