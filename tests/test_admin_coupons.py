"""Staff coupons over real HTTP (seed 001 §13, seed 004 §5): create, list, read, change and
delete; percent and fixed coupons, minimum order, validity window, per-user limit; what a
created coupon does to a cart and a checkout; the audit log; permissions and bad input."""
from __future__ import annotations

from datetime import timedelta

import pytest
from demo_accounts import ADMIN, BUYER, BUYER2, MODERATOR, ROBOT

from documents.common import iso, utcnow
from tests.stripe_stub import HAMMER, WIZARD

VISA = {"card_token": "tok_visa"}


async def create(api, token, **fields):
    payload = {"code": "SPRING10", "discount_percent": 10, "max_uses": 5, **fields}
    return await api("POST", "/api/admin/coupons", json=payload, token=token)


async def cart_with(api, token, *model_ids):
    for model_id in model_ids:
        assert (await api("POST", "/api/cart", json={"model_id": model_id},
                          token=token)).status == 201


@pytest.mark.gen_test
async def test_coupon_lifecycle_and_audit(api, tokens, services):
    admin = await tokens(ADMIN)
    made = await create(api, admin, code="spring10", description="Spring sale",
                        valid_until=iso(utcnow() + timedelta(days=7)), per_user_limit=1,
                        min_order_amount=5)
    assert made.status == 201, made.json
    coupon = made.json
    assert coupon["code"] == "SPRING10" and coupon["discount_type"] == "percent"
    assert coupon["discount_percent"] == 10 and coupon["min_order_amount"] == 5.0
    assert (coupon["max_uses"], coupon["used_count"], coupon["remaining"]) == (5, 0, 5)
    assert coupon["per_user_limit"] == 1 and coupon["is_active"] is True
    assert coupon["expires_at"] == coupon["valid_until"] is not None
    listed = await api("GET", "/api/admin/coupons?search=spring", token=admin)
    assert listed.status == 200 and [c["id"] for c in listed.json["items"]] == [coupon["id"]]
    one = await api("GET", f"/api/admin/coupons/{coupon['id']}", token=admin)
    assert one.status == 200 and one.json["code"] == "SPRING10"
    changed = await api("PUT", f"/api/admin/coupons/{coupon['id']}", token=admin,
                        json={"discount_type": "fixed", "discount_amount": 3, "max_uses": 8,
                              "active": False})
    assert changed.status == 200, changed.json
    assert (changed.json["discount_type"], changed.json["discount_amount"]) == ("fixed", 3.0)
    assert (changed.json["max_uses"], changed.json["remaining"]) == (8, 8)
    assert changed.json["is_active"] is False
    inactive = await api("GET", "/api/admin/coupons?active=false", token=admin)
    assert [c["id"] for c in inactive.json["items"]] == [coupon["id"]]
    gone = await api("DELETE", f"/api/admin/coupons/{coupon['id']}", token=admin)
    assert gone.status == 204
    assert (await api("GET", f"/api/admin/coupons/{coupon['id']}", token=admin)).status == 404
    actions = [a["action_type"] async for a in services.db.admin_actions.find(
        {"target_type": "coupon"}).sort("created_at", 1)]
    assert actions == ["coupon_created", "coupon_updated", "coupon_deleted"]


@pytest.mark.gen_test
async def test_admin_coupon_discounts_cart_and_checkout(api, tokens, services):
    admin, buyer, buyer2 = await tokens(ADMIN), await tokens(BUYER), await tokens(BUYER2)
    made = await create(api, admin, code="FIVEOFF", discount_type="fixed", discount_amount=5,
                        discount_percent=None, min_order_amount=20, per_user_limit=1,
                        max_uses=10)
    assert made.status == 201, made.json
    await cart_with(api, buyer, ROBOT)   # 19.99: below the 20.00 minimum
    low = await api("POST", "/api/cart/apply-coupon", json={"code": "fiveoff"}, token=buyer)
    assert low.status == 400 and low.json["error_code"] == "COUPON_MIN_ORDER"
    await cart_with(api, buyer, WIZARD)  # 19.99 + 0.99 = 20.98
    quote = await api("POST", "/api/cart/apply-coupon", json={"code": "fiveoff"}, token=buyer)
    assert quote.status == 200, quote.json
    assert (quote.json["subtotal"], quote.json["discount"], quote.json["total"]) == (
        20.98, 5.0, 15.98)
    # 500 cents shared by price: 1999 → 476.4…, 99 → 23.5… (largest remainder)
    assert [i["discount"] for i in quote.json["items"]] == [4.76, 0.24]
    paid = await api("POST", "/api/checkout", token=buyer, json={
        "model_ids": [ROBOT, WIZARD], "coupon_code": "FiveOff", "payment_details": VISA})
    assert paid.status == 200, paid.json
    order = await services.db.orders.find_one({"coupon_code": "FIVEOFF"})
    assert order["status"] == "paid" and order["total_cents"] == 1598
    assert order["discount_cents"] == 500
    seen = await api("GET", f"/api/admin/coupons/{made.json['id']}", token=admin)
    assert (seen.json["used_count"], seen.json["remaining"]) == (1, 9)
    # the per-user limit: buyer has used it once
    again = await api("POST", "/api/checkout", token=buyer, json={
        "model_ids": [HAMMER], "coupon_code": "FIVEOFF", "payment_details": VISA})
    assert again.status == 400 and again.json["error_code"] == "COUPON_LIMIT_REACHED"
    # another buyer still can; a coupon not started yet cannot be used
    other = await api("POST", "/api/checkout", token=buyer2, json={
        "model_ids": [HAMMER], "coupon_code": "FIVEOFF", "payment_details": VISA})
    assert other.status == 200, other.json
    later = await create(api, admin, code="LATER", valid_from=iso(utcnow() + timedelta(days=1)))
    assert later.status == 201
    early = await api("GET", "/api/cart?coupon_code=later", token=buyer2)
    assert early.status == 400 and early.json["error_code"] == "COUPON_NOT_STARTED"


@pytest.mark.gen_test
async def test_max_uses_cannot_drop_below_uses(api, tokens):
    admin, buyer = await tokens(ADMIN), await tokens(BUYER)
    made = await create(api, admin, code="ONCE", max_uses=2, discount_percent=50)
    paid = await api("POST", "/api/checkout", token=buyer, json={
        "model_ids": [ROBOT], "coupon_code": "ONCE", "payment_details": VISA})
    assert paid.status == 200, paid.json
    url = f"/api/admin/coupons/{made.json['id']}"
    below = await api("PUT", url, token=admin, json={"max_uses": 1})
    assert below.status == 200 and below.json["remaining"] == 0
    zero = await api("PUT", url, token=admin, json={"max_uses": 0})
    assert zero.status == 422
    dup = await create(api, admin, code="once")
    assert dup.status == 409 and dup.json["error_code"] == "COUPON_EXISTS"


@pytest.mark.gen_test
async def test_coupon_permissions_and_bad_input(api, tokens, services):
    admin = await tokens(ADMIN)
    assert (await api("GET", "/api/admin/coupons")).status == 401
    for email in (BUYER, MODERATOR):
        token = await tokens(email)
        assert (await api("GET", "/api/admin/coupons", token=token)).status == 403
        assert (await create(api, token)).status == 403
    for payload in ({"code": "X1", "discount_percent": 10, "max_uses": 1},          # short code
                    {"code": "OK10", "discount_percent": 0, "max_uses": 1},
                    {"code": "OK10", "discount_percent": 101, "max_uses": 1},
                    {"code": "OK10", "discount_type": "fixed", "max_uses": 1},
                    {"code": "OK10", "discount_type": "fixed", "discount_amount": -1,
                     "max_uses": 1},
                    {"code": "OK10", "discount_percent": 10},
                    {"code": "OK10", "discount_percent": 10, "max_uses": 1, "extra": 1},
                    {"code": "OK 10", "discount_percent": 10, "max_uses": 1},
                    {"code": "OK10", "discount_percent": 10, "max_uses": 1,
                     "valid_from": iso(utcnow()), "expires_at": iso(utcnow() - timedelta(1))},
                    {"code": "OK10", "discount_percent": 10, "max_uses": 1,
                     "valid_until": "tomorrow"}):
        reply = await api("POST", "/api/admin/coupons", json=payload, token=admin)
        assert reply.status == 422, (payload, reply.json)
        assert reply.json["error_code"] == "VALIDATION_ERROR" and reply.json["field_errors"]
    assert await services.db.coupons.count_documents({"code": {"$ne": "WELCOME10"}}) == 0
    for method in ("GET", "PUT", "DELETE"):
        for coupon_id in ("nope", "652000000000000000009999"):
            reply = await api(method, f"/api/admin/coupons/{coupon_id}", token=admin,
                              json={} if method == "PUT" else None)
            assert reply.status == 404 and reply.json["error_code"] == "NOT_FOUND"


@pytest.mark.gen_test
async def test_demo_coupon_of_the_fixtures(api, tokens):
    buyer = await tokens(BUYER)
    await cart_with(api, buyer, ROBOT)
    quote = await api("POST", "/api/cart/apply-coupon", json={"code": "welcome10"}, token=buyer)
    assert quote.status == 200, quote.json
    assert quote.json["coupon"]["code"] == "WELCOME10" and quote.json["total"] == 17.99
    listed = await api("GET", "/api/admin/coupons", token=await tokens(ADMIN))
    assert [c["code"] for c in listed.json["items"]] == ["WELCOME10"]
