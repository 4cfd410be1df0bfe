"""Coupon uses are held at checkout (max uses, counted once per completed order):
`used_count` never passes `max_uses`, even when an order waiting for 3-D Secure is paid after
other checkouts; failed, canceled and replaced orders give their use back exactly once; webhook
replays neither count nor give back twice. Against the local Stripe stand-in."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from bson import ObjectId
from checkout_support import THREE_DS, checkout, coupon_counts, new_coupon
from demo_accounts import ADMIN, BUYER, BUYER2, MODERATOR

from documents import coupons, orders, reclaim
from documents.common import utcnow
from tests.stripe_stub import WIZARD, count, stripe_settings

# these tests count orders, purchases and sales from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

VISA = {"card_token": "tok_visa"}


@pytest.fixture
def settings_overrides(stripe_stub):
    return stripe_settings(stripe_stub)


@pytest.fixture
def hook_url(base_url):
    return base_url + "/api/webhooks/stripe"


@pytest.mark.parametrize("max_uses, buyers", [(1, [BUYER, BUYER2]),
                                              (2, [BUYER, BUYER2, ADMIN, MODERATOR])])
@pytest.mark.gen_test
async def test_concurrent_checkouts_never_pass_max_uses(api, tokens, services, stripe_stub,
                                                        max_uses, buyers):
    db = services.db
    await new_coupon(db, max_uses)
    tokens_ = [await tokens(email) for email in buyers]
    replies = await asyncio.gather(*[checkout(api, t, VISA) for t in tokens_])
    won = [r for r in replies if r.status == 200]
    lost = [r for r in replies if r.status != 200]
    assert len(won) == max_uses, [r.json for r in replies]
    assert all(r.json["total_amount"] == 9.99 and r.json["coupon_code"] == "HALF" for r in won)
    assert {(r.status, r.json["error_code"]) for r in lost} == {(400, "COUPON_USED_UP")}
    # the refused buyers were not charged and nothing of theirs was kept
    assert stripe_stub.created == stripe_stub.charges == max_uses
    assert await count(db, "orders") == max_uses
    assert await count(db, "purchases") == max_uses
    assert await count(db, "checkout_claims") == 0
    assert await coupon_counts(db) == (max_uses, 0, 0)


@pytest.mark.gen_test
async def test_three_d_secure_order_holds_the_last_use(api, tokens, services, stripe_stub,
                                                       hook_url):
    db = services.db
    await new_coupon(db, 1)
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    waiting = await checkout(api, buyer, THREE_DS)
    assert waiting.status == 200 and waiting.json["status"] == "requires_action"
    assert waiting.json["total_amount"] == 9.99
    assert await coupon_counts(db) == (0, 1, 0)
    # the held use is taken: another checkout is refused before any charge, quotes too
    refused = await checkout(api, buyer2, VISA)
    assert (refused.status, refused.json["error_code"]) == (400, "COUPON_USED_UP")
    assert stripe_stub.created == 1 and stripe_stub.charges == 0
    assert await count(db, "orders") == 1 and await count(db, "purchases") == 0
    quote = await api("POST", "/api/cart/apply-coupon", json={"code": "half"}, token=buyer2)
    assert (quote.status, quote.json["error_code"]) == (400, "COUPON_USED_UP")
    # 3-D Secure passes: the webhook (twice, and replayed) and the client finish it together
    intent = stripe_stub.authenticate(waiting.json["payment_intent_id"])
    results = await asyncio.gather(
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_a"),
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_a"),
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_b"),
        api("POST", "/api/checkout/process-payment", token=buyer,
            json={"order_id": waiting.json["order_id"]}))
    assert [r.code for r in results[:3]] == [200, 200, 200]
    assert results[3].status == 200 and results[3].json["status"] == "paid"
    assert stripe_stub.charges == 1
    assert await coupon_counts(db) == (1, 0, 0)
    order = await db.orders.find_one({"_id": ObjectId(waiting.json["order_id"])})
    assert order["coupon_hold"] == "used" and order["counted"] is True
    again = await checkout(api, buyer2, VISA)
    assert (again.status, again.json["error_code"]) == (400, "COUPON_USED_UP")
    assert await coupon_counts(db) == (1, 0, 0)


@pytest.mark.gen_test
async def test_declined_three_d_secure_gives_the_use_back_once(api, tokens, services,
                                                               stripe_stub, hook_url):
    db = services.db
    await new_coupon(db, 1)
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    waiting = (await checkout(api, buyer, THREE_DS)).json
    intent = stripe_stub.authenticate(waiting["payment_intent_id"], passed=False)
    # payment_failed delivered twice and replayed, with the client's process-payment
    results = await asyncio.gather(
        stripe_stub.send_event(hook_url, "payment_intent.payment_failed", intent, event_id="e1"),
        stripe_stub.send_event(hook_url, "payment_intent.payment_failed", intent, event_id="e1"),
        stripe_stub.send_event(hook_url, "payment_intent.payment_failed", intent, event_id="e2"),
        api("POST", "/api/checkout/process-payment", token=buyer,
            json={"order_id": waiting["order_id"]}))
    assert [r.code for r in results[:3]] == [200, 200, 200]
    assert results[3].status == 402 and results[3].json["error_code"] == "PAYMENT_FAILED"
    order = await db.orders.find_one({"_id": ObjectId(waiting["order_id"])})
    assert order["status"] == "failed" and order["coupon_hold"] == "released"
    assert await coupon_counts(db) == (0, 0, 1)
    # a late retry of the failure path gives nothing back twice
    for _ in range(2):
        await orders.fail_order(db, order["_id"], "card_declined", None)
        assert not await orders.release_coupon(db, order["_id"])
    assert await coupon_counts(db) == (0, 0, 1)
    # the use is free again
    paid = await checkout(api, buyer2, VISA)
    assert paid.status == 200 and paid.json["total_amount"] == 9.99
    assert await coupon_counts(db) == (1, 0, 0)


@pytest.mark.gen_test
async def test_declined_card_and_idempotent_replay_hold_once(api, tokens, services, stripe_stub):
    db = services.db
    await new_coupon(db, 1)
    buyer = await tokens(BUYER)
    declined = await checkout(api, buyer, {"card_token": "tok_chargeDeclined"})
    assert declined.status == 402
    unknown_card = await checkout(api, buyer, {"card_token": "tok_unknown"})
    assert unknown_card.status == 402
    assert await coupon_counts(db) == (0, 0, 1)
    headers = {"Idempotency-Key": "coupon-1"}
    first = await checkout(api, buyer, THREE_DS, headers=headers)
    second = await checkout(api, buyer, THREE_DS, headers=headers)
    assert first.status == second.status == 200
    assert first.json["order_id"] == second.json["order_id"]
    assert await coupon_counts(db) == (0, 1, 0)


@pytest.mark.gen_test
async def test_abandoned_order_is_replaced_and_gives_its_use_back(api, tokens, services,
                                                                  stripe_stub, hook_url):
    db = services.db
    await new_coupon(db, 1)
    await new_coupon(db, 1, "SOLO")
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    # the same buyer tries again after abandoning 3-D Secure: the old order is replaced
    old = (await checkout(api, buyer, THREE_DS)).json
    stale = utcnow() - orders.CLAIM_TTL - timedelta(minutes=1)
    await db.orders.update_one({"_id": ObjectId(old["order_id"])}, {"$set": {"created_at": stale}})
    fresh = await checkout(api, buyer, VISA)
    assert fresh.status == 200 and fresh.json["status"] == "paid", fresh.json
    replaced = await db.orders.find_one({"_id": ObjectId(old["order_id"])})
    assert replaced["status"] == "canceled" and replaced["coupon_hold"] == "released"
    assert await coupon_counts(db) == (1, 0, 0)
    # a late success of the abandoned payment is not delivered and not counted
    intent = stripe_stub.authenticate(old["payment_intent_id"])
    late = await stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent)
    assert late.code == 200
    assert await coupon_counts(db) == (1, 0, 0)
    # another buyer's abandoned order stops holding the last use after the same delay
    held = (await checkout(api, buyer, THREE_DS, model_id=WIZARD, code="solo")).json
    refused = await checkout(api, buyer2, VISA, code="solo")
    assert (refused.status, refused.json["error_code"]) == (400, "COUPON_USED_UP")
    await db.orders.update_one({"_id": ObjectId(held["order_id"])}, {"$set": {"created_at": stale}})
    taken = await checkout(api, buyer2, VISA, code="solo")
    assert taken.status == 200 and taken.json["total_amount"] == 9.99
    assert (await db.orders.find_one({"_id": ObjectId(held["order_id"])}))["status"] == "canceled"
    assert await count(db, "checkout_claims") == 0
    assert await coupon_counts(db, "SOLO") == (1, 0, 0)


@pytest.mark.gen_test
async def test_expired_or_inactive_coupon_is_refused_before_any_write(api, tokens, services,
                                                                      stripe_stub):
    db = services.db
    await coupons.create_coupon(db, "OLD", 10, max_uses=5, expires_at=utcnow() - timedelta(days=1))
    await coupons.create_coupon(db, "OFF", 10, max_uses=5, expires_at=None, is_active=False)
    buyer = await tokens(BUYER)
    for code, error in [("old", "COUPON_EXPIRED"), ("off", "COUPON_INACTIVE")]:
        reply = await checkout(api, buyer, VISA, code=code)
        assert (reply.status, reply.json["error_code"]) == (400, error)
    missing = await checkout(api, buyer, VISA, code="nope")
    assert (missing.status, missing.json["reason"]) == (404, "INVALID_COUPON")
    assert await count(db, "orders") == 0 and await count(db, "checkout_claims") == 0
    assert stripe_stub.created == 0
    for code in ("OLD", "OFF"):
        assert await coupon_counts(db, code) == (0, 0, 5)


@pytest.mark.gen_test
async def test_coupon_stored_before_holds_is_migrated(api, tokens, services, stripe_stub):
    db = services.db
    await db.coupons.insert_one({"code": "LEGACY", "discount_percent": 50, "max_uses": 2,
                                 "used_count": 1, "expires_at": None, "is_active": True,
                                 "ops": [], "created_at": utcnow()})
    buyer, buyer2 = await tokens(BUYER), await tokens(BUYER2)
    assert (await checkout(api, buyer, VISA, code="legacy")).status == 200
    refused = await checkout(api, buyer2, VISA, code="legacy")
    assert (refused.status, refused.json["error_code"]) == (400, "COUPON_USED_UP")
    coupon = await db.coupons.find_one({"code": "LEGACY"})
    assert (coupon["used_count"], coupon["reserved_count"], coupon["remaining"]) == (2, 0, 0)


@pytest.mark.parametrize("cut_after", ["claim", "give_back", "mark"])
@pytest.mark.gen_test
async def test_give_back_cut_short_by_a_crash_is_finished_once(api, tokens, services,
                                                                stripe_stub, cut_after):
    db = services.db
    await new_coupon(db, 1)
    waiting = (await checkout(api, await tokens(BUYER), THREE_DS)).json
    order_id = ObjectId(waiting["order_id"])
    coupon = await db.coupons.find_one({"code": "HALF"})
    # the process stopped after one of the give-back's writes, long enough ago
    crashed_at = utcnow() - timedelta(hours=1)
    await db.orders.update_one({"_id": order_id}, {"$set": {
        "status": "failed", "coupon_hold": "releasing", "coupon_releasing_at": crashed_at}})
    if cut_after in ("give_back", "mark"):
        assert await coupons.release_use(db, coupon["_id"], order_id)
    if cut_after == "mark":
        await db.orders.update_one({"_id": order_id}, {"$set": {"coupon_hold": "released"}})
    # a request retrying the failure path does not give it back on its own
    assert not await orders.release_coupon(db, order_id)
    given = await reclaim.reclaim_coupons(db)
    assert given == (1 if cut_after == "claim" else 0)
    assert await coupon_counts(db) == (0, 0, 1)
    assert (await db.orders.find_one({"_id": order_id}))["coupon_hold"] == "released"
    # the next run finds nothing more to give back
    assert await reclaim.reclaim_coupons(db) == 0
    assert await coupon_counts(db) == (0, 0, 1)


@pytest.mark.gen_test
async def test_a_give_back_in_progress_is_left_to_its_request(api, tokens, services, stripe_stub):
    db = services.db
    await new_coupon(db, 1)
    waiting = (await checkout(api, await tokens(BUYER), THREE_DS)).json
    order_id = ObjectId(waiting["order_id"])
    await db.orders.update_one({"_id": order_id}, {"$set": {
        "status": "failed", "coupon_hold": "releasing", "coupon_releasing_at": utcnow()}})
    assert await reclaim.reclaim_coupons(db) == 0
    coupon = await db.coupons.find_one({"code": "HALF"})
    assert (coupon["reserved_count"], coupon["remaining"]) == (1, 0)
