"""The admin's pages of seed 001 §13 played in order over real HTTP: sign in with the demo
admin's TOTP code (README "Demo accounts"), work the moderation queue (approve one model,
reject another with a reason the creator reads), create a coupon a buyer can use, approve
and pay a creator's payout, look users up, and resolve a reported post."""
from __future__ import annotations

import pytest
from demo_accounts import ADMIN, BUYER, CREATOR, DEMO_PASSWORD, GAME_ASSETS, ROBOT

from tests.journeys import admin_sign_in, sign_in

CRYSTAL, BLASTER = "652000000000000000000040", "652000000000000000000041"   # pending


@pytest.mark.gen_test(timeout=60)
async def test_admin_signs_in_only_with_a_second_factor(api):
    without = await api("POST", "/api/auth/admin/login",
                        json={"email": ADMIN, "password": DEMO_PASSWORD})
    assert without.status == 200 and without.json["otp_required"] is True
    assert "access_token" not in without.json
    token = await admin_sign_in(api)
    stats = await api("GET", "/api/admin/stats", token=token)
    assert stats.status == 200
    for field in ("total_users", "total_models", "pending_models"):
        assert isinstance(stats.json[field], int), field
    buyer = await sign_in(api, BUYER)
    refused = await api("GET", "/api/admin/stats", token=buyer)
    assert refused.status == 403 and refused.json["error_code"] == "FORBIDDEN"


@pytest.mark.gen_test(timeout=60)
async def test_moderation_queue_approve_and_reject(api):
    token = await admin_sign_in(api)
    queue = (await api("GET", "/api/admin/models?status=pending&_=1", token=token)).json
    pending = [m["id"] for m in queue["items"]]
    assert {CRYSTAL, BLASTER} <= set(pending)
    assert all(m["status"] == "pending" and m["creator"]["username"] for m in queue["items"])
    assert (await api("GET", f"/api/models/{CRYSTAL}")).status == 404     # not public yet

    approved = await api("PUT", f"/api/admin/models/{CRYSTAL}/approve", token=token, json={})
    assert approved.status == 200 and approved.json["status"] == "approved"
    public = await api("GET", f"/api/models/{CRYSTAL}")
    assert public.status == 200 and public.json["title"] == "Crystal Cluster"

    rejected = await api("PUT", f"/api/admin/models/{BLASTER}/reject", token=token,
                         json={"reason": "The textures are missing"})
    assert rejected.status == 200 and rejected.json["status"] == "rejected"
    after = (await api("GET", "/api/admin/models?status=pending", token=token)).json
    assert not {CRYSTAL, BLASTER} & {m["id"] for m in after["items"]}
    assert after["total"] == queue["total"] - 2

    # the creator of the rejected model reads the reason on their inventory page
    owner = (await api("GET", f"/api/admin/models/{BLASTER}", token=token)).json["creator"]
    creator = await sign_in(api, f"{owner['username']}@hwc3d.com")
    mine = (await api("GET", "/api/users/me/models?status=rejected", token=creator)).json
    shown = next(m for m in mine["items"] if m["id"] == BLASTER)
    assert shown["rejection_reason"] == "The textures are missing"


@pytest.mark.gen_test(timeout=60)
async def test_admin_creates_a_coupon_that_a_buyer_applies(api):
    token = await admin_sign_in(api)
    created = await api("POST", "/api/admin/coupons", token=token, json={
        "code": "SPRING25", "discount_type": "percent", "discount_percent": 25,
        "max_uses": 100, "description": "Spring sale"})
    assert created.status == 201, created.json
    assert created.json["code"] == "SPRING25" and created.json["is_active"] is True
    listed = (await api("GET", "/api/admin/coupons?search=SPRING", token=token)).json
    assert [c["code"] for c in listed["items"]] == ["SPRING25"]
    buyer = await sign_in(api, BUYER)
    assert (await api("POST", "/api/cart", token=buyer, json={"model_id": ROBOT})).status == 201
    quoted = await api("POST", "/api/cart/apply-coupon", token=buyer, json={"code": "spring25"})
    assert quoted.status == 200 and quoted.json["discount"] == 5.0    # 25 % of 19.99
    again = await api("POST", "/api/admin/coupons", token=token, json={
        "code": "SPRING25", "discount_percent": 10, "max_uses": 5})
    assert again.status == 409


@pytest.mark.gen_test(timeout=60)
async def test_admin_approves_then_pays_a_creators_payout(api):
    creator = await sign_in(api, CREATOR)
    method = await api("POST", "/api/users/me/payout-methods", token=creator, json={
        "type": "bank_account", "bank_name": "First Bank", "account_holder_name": "Cre Ator",
        "account_number": "000123456789"})
    assert method.status == 201, method.json
    requested = await api("POST", "/api/dashboard/request-payout", token=creator,
                          json={"amount": "10.00", "method_id": method.json["id"]})
    assert requested.status == 201, requested.json
    payout_id = requested.json["payout"]["id"]

    token = await admin_sign_in(api)
    queue = (await api("GET", "/api/admin/revenue/payouts?status=requested", token=token)).json
    assert payout_id in [p["id"] for p in queue["items"]]
    approved = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/approve", token=token,
                         json={"paid": False, "note": "Friday run"})
    assert approved.status == 200 and approved.json["status"] == "approved"
    paid = await api("POST", f"/api/admin/revenue/payouts/{payout_id}/mark-paid", token=token,
                     json={})
    assert paid.status == 200 and paid.json["status"] == "paid"
    mine = (await api("GET", "/api/dashboard/payouts", token=creator)).json
    assert next(p for p in mine["items"] if p["id"] == payout_id)["status"] == "paid"


@pytest.mark.gen_test(timeout=60)
async def test_admin_finds_users_and_resolves_a_reported_post(api):
    token = await admin_sign_in(api)
    users = (await api("GET", "/api/admin/users?search=creator&user_type=creator",
                       token=token)).json
    assert {"creator", "creator2"} <= {u["username"] for u in users["items"]}
    assert all(u["user_type"] == "creator" and "password_hash" not in u for u in users["items"])
    one = (await api("GET", f"/api/admin/users/{users['items'][0]['id']}", token=token)).json
    assert one["email"].endswith("@hwc3d.com")

    buyer = await sign_in(api, BUYER)
    post = await api("POST", f"/api/communities/{GAME_ASSETS}/posts", token=buyer,
                     json={"content": "Buy cheap followers at example.com"})
    assert post.status == 201
    reporter = await sign_in(api, CREATOR)
    reported = await api("POST", f"/api/posts/{post.json['id']}/report", token=reporter,
                         json={"reason": "Spam/Self-promotion"})
    assert reported.status in (200, 201), reported.json
    queue = (await api("GET", "/api/admin/reports", token=token)).json
    report = next(r for r in queue["items"] if r["content_id"] == post.json["id"])
    assert report["reason"] == "Spam/Self-promotion" and report["status"] == "pending"
    resolved = await api("PUT", f"/api/admin/reports/{report['id']}/resolve", token=token,
                         json={"action": "remove", "notes": "Spam"})
    assert resolved.status == 200, resolved.json
    assert (await api("GET", f"/api/posts/{post.json['id']}", token=buyer)).status == 404
