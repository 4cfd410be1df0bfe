"""Cart and coupons (seed 000 §4, seed 004 §5): what may go in, totals, coupons, bad input."""
from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, CREATOR, ROBOT, SNOWMAN

from documents import coupons
from documents.common import utcnow
from tests.stripe_stub import BALLOON, HAMMER, WIZARD


async def add(api, token, model_id):
    return await api("POST", "/api/cart", json={"model_id": model_id}, token=token)


@pytest.mark.gen_test
async def test_add_list_remove(api, tokens, services):
    token = await tokens(BUYER)
    first = await add(api, token, ROBOT)
    assert first.status == 201, first.json
    assert first.json["item"]["model_id"] == ROBOT and first.json["total"] == 19.99
    await add(api, token, WIZARD)
    listed = await api("GET", "/api/cart", token=token)
    assert listed.status == 200
    body = listed.json
    assert [i["model_id"] for i in body["items"]] == [ROBOT, WIZARD]
    assert body["subtotal"] == 20.98 and body["discount"] == 0 and body["total"] == 20.98
    assert body["platform_fee"] == 1.57 and body["item_count"] == 2
    assert body["items"][0]["model"]["creator"]["username"]
    assert "file_key" not in body["items"][0]["model"]
    removed = await api("DELETE", f"/api/cart/{ROBOT}", token=token)
    assert removed.status == 200 and removed.json["total"] == 0.99
    again = await api("DELETE", f"/api/cart/{ROBOT}", token=token)
    assert again.status == 404 and again.json["reason"] == "NOT_IN_CART"
    assert (await api("DELETE", "/api/cart/nope", token=token)).status == 404
    # carts are private
    other = await tokens(BUYER2)
    assert (await api("GET", "/api/cart", token=other)).json["items"] == []
    assert (await api("DELETE", f"/api/cart/{WIZARD}", token=other)).status == 404


@pytest.mark.gen_test
async def test_cart_refuses_what_cannot_be_bought(api, tokens, services):
    token = await tokens(BUYER)
    assert (await add(api, token, ROBOT)).status == 201
    dup = await add(api, token, ROBOT)
    assert dup.status == 409 and dup.json["error_code"] == "ALREADY_IN_CART"
    free = await add(api, token, SNOWMAN)
    assert free.status == 400 and free.json["error_code"] == "MODEL_IS_FREE"
    creator = await tokens(CREATOR)
    own = await add(api, creator, ROBOT)
    assert own.status == 400 and own.json["error_code"] == "CANNOT_BUY_OWN_MODEL"
    await services.db.models.update_one({"_id": ObjectId(HAMMER)}, {"$set": {"status": "pending"}})
    hidden = await add(api, token, HAMMER)
    assert hidden.status == 404 and hidden.json["reason"] == "MODEL_NOT_AVAILABLE"
    await services.db.models.update_one({"_id": ObjectId(BALLOON)},
                                        {"$set": {"is_published": False}})
    unpublished = await add(api, token, BALLOON)
    assert unpublished.status == 404 and unpublished.json["reason"] == "MODEL_NOT_AVAILABLE"
    bought = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [WIZARD], "payment_details": {"card_token": "tok_visa"}})
    assert bought.status == 200
    owned = await add(api, token, WIZARD)
    assert owned.status == 409 and owned.json["error_code"] == "ALREADY_PURCHASED"
    unknown = await add(api, token, "652000000000000000009999")
    assert unknown.status == 404
    assert await services.db.cart_items.count_documents({}) == 1


@pytest.mark.gen_test
async def test_cart_bad_input(api, tokens, services):
    token = await tokens(BUYER)
    for kwargs, status in [({"body": b"{oops"}, 400), ({"json": {}}, 422),
                           ({"json": {"model_id": 5}}, 422), ({"json": {"model_id": ""}}, 422),
                           ({"json": {"model_id": ROBOT, "qty": 2}}, 422),
                           ({"json": {"model_id": "not-an-id"}}, 404),
                           ({"json": [ROBOT]}, 422)]:
        reply = await api("POST", "/api/cart", token=token, **kwargs)
        assert reply.status == status, (kwargs, reply.json)
        assert reply.json["error_code"]
    assert await services.db.cart_items.count_documents({}) == 0
    assert (await api("GET", "/api/cart")).status == 401
    assert (await api("POST", "/api/cart", json={"model_id": ROBOT})).status == 401
    assert (await api("GET", "/api/cart?coupon_code=", token=token)).status == 422
    assert (await api("GET", "/api/cart?_=1", token=token)).status == 200   # a cache buster


@pytest.mark.gen_test
async def test_apply_coupon(api, tokens, services):
    db = services.db
    await coupons.create_coupon(db, "save15", 15, max_uses=2, expires_at=utcnow() + timedelta(days=1))
    await coupons.create_coupon(db, "OLD", 10, max_uses=5, expires_at=utcnow() - timedelta(days=1))
    await coupons.create_coupon(db, "OFF", 10, max_uses=5, expires_at=None, is_active=False)
    await coupons.create_coupon(db, "GONE", 10, max_uses=1, expires_at=None)
    await db.coupons.update_one({"code": "GONE"}, {"$set": {"used_count": 1, "remaining": 0}})
    token = await tokens(BUYER)
    await add(api, token, ROBOT)
    await add(api, token, WIZARD)
    applied = await api("POST", "/api/cart/apply-coupon", json={"code": "Save15"}, token=token)
    assert applied.status == 200, applied.json
    body = applied.json
    assert body["coupon"]["code"] == "SAVE15" and body["coupon"]["discount_percent"] == 15
    # 1999 - 300 = 1699 (fee 127), 99 - 15 = 84 (fee 6)
    assert (body["subtotal"], body["discount"], body["total"], body["platform_fee"]) == (
        20.98, 3.15, 17.83, 1.33)
    same = await api("GET", "/api/cart?coupon_code=save15", token=token)
    assert same.json["total"] == 17.83
    for code, status, error in [("OLD", 400, "COUPON_EXPIRED"), ("OFF", 400, "COUPON_INACTIVE"),
                                ("GONE", 400, "COUPON_USED_UP"), ("NOPE", 404, "INVALID_COUPON")]:
        reply = await api("POST", "/api/cart/apply-coupon", json={"code": code}, token=token)
        assert (reply.status, reply.json.get("reason", reply.json["error_code"])) == (status, error)
    for payload in ({}, {"code": ""}, {"code": 15}, {"code": "SAVE15", "x": 1}):
        reply = await api("POST", "/api/cart/apply-coupon", json=payload, token=token)
        assert reply.status == 422
    assert (await api("POST", "/api/cart/apply-coupon", json={"code": "SAVE15"})).status == 401
    # the coupon counts once per paid order, not per attempt
    declined = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "coupon_code": "save15",
        "payment_details": {"card_token": "tok_chargeDeclined"}})
    assert declined.status == 402
    assert (await db.coupons.find_one({"code": "SAVE15"}))["used_count"] == 0
    paid = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT, WIZARD], "coupon_code": "save15",
        "payment_details": {"card_token": "tok_visa"}})
    assert paid.status == 200 and paid.json["total_amount"] == 17.83
    coupon = await db.coupons.find_one({"code": "SAVE15"})
    assert coupon["used_count"] == 1 and coupon["ops"] == []
    assert (coupon["reserved_count"], coupon["remaining"]) == (0, 1)
