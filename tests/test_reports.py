"""Content reports (seed 000 §5 POST /api/posts/{id}/report, §7 reports):
one report per user and content, staff listing with filters, resolution that hides the
content and closes the other reports of it, once."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import GAME_ASSETS

from documents import catalog, communities, posts, reports

WELCOME, MODEL_POST, PRIVATE_POST = ("655000000000000000000001", "655000000000000000000002",
                                     "655000000000000000000007")
FIRST_COMMENT = "656000000000000000000001"
MISSING = "657000000000000000000099"


@pytest.fixture
def who(tokens):
    async def sign_in(name: str) -> str:
        return await tokens(f"{name}@hwc3d.com")
    return sign_in


async def report(api, token: str, post_id: str = MODEL_POST, **body):
    return await api("POST", f"/api/posts/{post_id}/report", token=token,
                     json={"reason": "Spam/Self-promotion", **body})


@pytest.mark.gen_test
async def test_report_a_post_once(api, who, services):
    token = await who("buyer")
    first = await report(api, token, details="Links to another shop")
    assert first.status == 201, first.json
    assert first.json["status"] == "pending" and first.json["content_type"] == "post"
    assert first.json["content_id"] == MODEL_POST and first.json["details"] == "Links to another shop"
    twice = await report(api, token, reason="Other")
    assert twice.status == 409 and twice.json["error_code"] == "ALREADY_REPORTED"
    raced = await asyncio.gather(*(report(api, token, WELCOME) for _ in range(4)))
    assert sorted(r.status for r in raced) == [201, 409, 409, 409]
    assert await services.db[reports.REPORTS].count_documents({}) == 2


@pytest.mark.gen_test
async def test_report_bad_input_and_access(api, who, services):
    token = await who("buyer2")
    for bad in ({}, {"reason": "I dislike it"}, {"reason": "Other", "details": "x" * 501},
                {"reason": "Other", "content_type": "model"}, {"reason": 3}):
        reply = await api("POST", f"/api/posts/{MODEL_POST}/report", token=token, json=bad)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", bad
    malformed = await api("POST", f"/api/posts/{MODEL_POST}/report", token=token, body="{",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await report(api, None)).status == 401
    assert (await report(api, token, "not-an-id")).status == 404
    assert (await report(api, token, MISSING)).status == 404
    assert (await report(api, token, PRIVATE_POST)).status == 403          # pending member
    assert await services.db[reports.REPORTS].count_documents({}) == 0


@pytest.mark.gen_test
async def test_report_a_comment(api, who):
    token = await who("buyer2")
    path = f"/api/posts/{WELCOME}/comments/{FIRST_COMMENT}/report"
    reply = await api("POST", path, token=token, json={"reason": "Harassment or bullying"})
    assert reply.status == 201 and reply.json["content_type"] == "comment"
    assert (await api("POST", path, token=token, json={"reason": "Other"})).status == 409
    wrong = await api("POST", f"/api/posts/{MODEL_POST}/comments/{FIRST_COMMENT}/report",
                      token=token, json={"reason": "Other"})
    assert wrong.status == 404 and wrong.json["reason"] == "COMMENT_NOT_FOUND"


@pytest.mark.gen_test
async def test_staff_list_reports_with_filters(api, who):
    await report(api, await who("buyer"))
    await report(api, await who("buyer2"))
    await api("POST", f"/api/posts/{WELCOME}/comments/{FIRST_COMMENT}/report",
              token=await who("buyer2"), json={"reason": "Other"})
    assert (await api("GET", "/api/admin/reports")).status == 401
    assert (await api("GET", "/api/admin/reports", token=await who("creator"))).status == 403
    staff = await who("moderator")
    listed = await api("GET", "/api/admin/reports", token=staff)
    assert listed.status == 200 and listed.json["total"] == 3
    newest = listed.json["items"][0]
    assert newest["content_type"] == "comment" and newest["reporter"]["username"] == "buyer2"
    assert newest["content"]["text"] == "Thanks for setting this up!"
    only_posts = await api("GET", "/api/admin/reports?content_type=post&status=pending", token=staff)
    assert only_posts.json["total"] == 2
    assert only_posts.json["items"][0]["content"]["is_removed"] is False
    for bad in ("status=open", "content_type=user", "limit=0"):
        assert (await api("GET", f"/api/admin/reports?{bad}", token=staff)).status == 422


@pytest.mark.gen_test
async def test_remove_hides_the_post_and_resolves_every_report_of_it(api, who, services):
    one = (await report(api, await who("buyer"))).json
    other = (await report(api, await who("buyer2"), reason="Other")).json
    staff = await who("moderator")
    before = (await services.db[communities.COMMUNITIES].find_one({"_id": ObjectId(GAME_ASSETS)}))
    resolved = await api("PUT", f"/api/admin/reports/{one['id']}/resolve", token=staff,
                         json={"action": "remove", "notes": "Content removed for violating "
                                                            "guidelines"})
    assert resolved.status == 200, resolved.json
    assert resolved.json["status"] == "resolved" and resolved.json["action"] == "remove"
    assert resolved.json["resolver"]["username"] == "moderator" and resolved.json["resolved_at"]
    assert (await api("GET", f"/api/posts/{MODEL_POST}")).status == 404
    after = await services.db[communities.COMMUNITIES].find_one({"_id": ObjectId(GAME_ASSETS)})
    assert after["post_count"] == before["post_count"] - 1
    second = await services.db[reports.REPORTS].find_one({"_id": ObjectId(other["id"])})
    assert second["status"] == "resolved" and second["action"] == "remove"
    action = await services.db.admin_actions.find_one({"target_type": "report"})
    assert (action["action_type"], action["target_id"]) == ("report_remove", ObjectId(one["id"]))
    assert action["details"] == {"content_type": "post", "content_id": MODEL_POST}
    again = await api("PUT", f"/api/admin/reports/{other['id']}/resolve", token=staff,
                      json={"action": "dismiss"})
    assert again.status == 409 and again.json["error_code"] == "REPORT_NOT_PENDING"


@pytest.mark.gen_test
async def test_dismiss_and_comment_removal_and_bad_input(api, who, services):
    staff = await who("moderator")
    post_report = (await report(api, await who("buyer"))).json
    dismissed = await api("PUT", f"/api/admin/reports/{post_report['id']}/resolve", token=staff,
                          json={"action": "dismiss"})
    assert dismissed.status == 200 and dismissed.json["status"] == "dismissed"
    assert (await api("GET", f"/api/posts/{MODEL_POST}")).status == 200
    assert await services.db.admin_actions.count_documents(
        {"action_type": "report_dismiss", "target_id": ObjectId(post_report["id"])}) == 1

    comment_report = (await api("POST", f"/api/posts/{WELCOME}/comments/{FIRST_COMMENT}/report",
                                token=await who("buyer2"), json={"reason": "Other"})).json
    raced = await asyncio.gather(*(
        api("PUT", f"/api/admin/reports/{comment_report['id']}/resolve", token=staff,
            json={"action": "remove"}) for _ in range(3)))
    assert sorted(r.status for r in raced) == [200, 409, 409]
    post = await services.db[posts.POSTS].find_one({"_id": ObjectId(WELCOME)})
    assert post["comment_count"] == 1
    assert [c["is_deleted"] for c in post["comments"]] == [True, False]
    shown = (await api("GET", f"/api/posts/{WELCOME}/comments")).json["items"]
    assert shown[0]["is_deleted"] is True and shown[0]["content"] is None     # keeps its reply
    assert shown[1]["parent_id"] == FIRST_COMMENT

    path = f"/api/admin/reports/{post_report['id']}/resolve"
    for bad in ({}, {"action": "ban"}, {"action": "remove", "notes": "x" * 1001},
                {"action": "remove", "extra": True}):
        assert (await api("PUT", path, token=staff, json=bad)).status == 422, bad
    for missing in ("zzz", MISSING):
        reply = await api("PUT", f"/api/admin/reports/{missing}/resolve", token=staff,
                          json={"action": "dismiss"})
        assert reply.status == 404, missing
    assert (await api("PUT", path, token=await who("creator"), json={"action": "dismiss"})).status == 403


@pytest.mark.gen_test
async def test_removing_a_reported_model_unpublishes_it(api, who, services):
    model = await services.db[catalog.COLLECTION].find_one({"status": "approved",
                                                            "is_published": True})
    reporter = await services.db["users"].find_one({"username": "buyer"})
    created = await reports.create(services.db, reporter, "model", model["_id"], reason="Other")
    reply = await api("PUT", f"/api/admin/reports/{created['id']}/resolve",
                      token=await who("moderator"), json={"action": "remove"})
    assert reply.status == 200
    stored = await services.db[catalog.COLLECTION].find_one({"_id": model["_id"]})
    assert stored["is_published"] is False
    listed = await api("GET", "/api/admin/reports?content_type=model", token=await who("moderator"))
    assert listed.json["items"][0]["content"] == {"text": model["title"],
                                                  "author_id": str(model["creator_id"]),
                                                  "is_removed": True}
