"""Money: fees rounded half up per line, coupons per line, totals and ledger sums that agree
to the cent on awkward prices (0.01, 0.99, 19.99, 1234.56); the embedded test provider's
3-D Secure; a retried fulfilment that delivers once."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from bson import ObjectId
from demo_accounts import BUYER, CREATOR2_ID, CREATOR_ID, ROBOT

from documents import coupons, fulfilment, money
from documents.common import utcnow
from tests.stripe_stub import BALLOON, HAMMER, WIZARD

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

AWKWARD = [BALLOON, WIZARD, ROBOT, HAMMER]   # 0.01, 0.99, 19.99, 1234.56


def test_fee_is_seven_and_a_half_percent_rounded_half_up():
    assert [money.platform_fee_cents(c) for c in (0, 1, 6, 7, 20, 60, 99, 1999, 123456)] == [
        0, 0, 0, 1, 2, 5, 7, 150, 9259]
    for cents in range(0, 5000, 7):
        fee, seller = money.split_line(cents)
        assert fee + seller == cents and fee >= 0
    assert money.price_line(1999, 15) == {"price_cents": 1999, "discount_cents": 300,
                                          "amount_cents": 1699, "fee_cents": 127,
                                          "seller_amount_cents": 1572}
    assert money.price_line(1, 50)["discount_cents"] == 1          # 0.5 rounds up
    assert money.price_line(99, 100)["amount_cents"] == 0
    assert money.discount_cents(123456, 12.5) == 15432


@pytest.mark.gen_test
async def test_awkward_prices_agree_to_the_cent(api, tokens, services):
    db = services.db
    await coupons.create_coupon(db, "FIFTEEN", 15, max_uses=10, expires_at=utcnow() + timedelta(days=1))
    token = await tokens(BUYER)
    for model_id in AWKWARD:
        assert (await api("POST", "/api/cart", json={"model_id": model_id}, token=token)).status == 201
    plain = (await api("GET", "/api/cart", token=token)).json
    assert (plain["subtotal"], plain["total"], plain["platform_fee"]) == (1255.55, 1255.55, 94.16)
    quoted = (await api("POST", "/api/cart/apply-coupon", json={"code": "fifteen"}, token=token)).json
    assert (quoted["subtotal"], quoted["discount"], quoted["total"], quoted["platform_fee"]) == (
        1255.55, 188.33, 1067.22, 80.03)
    reply = await api("POST", "/api/checkout", token=token, json={
        "model_ids": AWKWARD, "coupon_code": "FIFTEEN",
        "payment_details": {"card_token": "tok_visa"}})
    assert reply.status == 200, reply.json
    body = reply.json
    assert (body["subtotal"], body["discount"], body["total_amount"], body["platform_fee"]) == (
        1255.55, 188.33, 1067.22, 80.03)
    order = await db.orders.find_one({"_id": ObjectId(body["order_id"])})
    assert [(line["price_cents"], line["discount_cents"], line["amount_cents"], line["fee_cents"],
             line["seller_amount_cents"]) for line in order["lines"]] == [
        (1, 0, 1, 0, 1), (99, 15, 84, 6, 78), (1999, 300, 1699, 127, 1572),
        (123456, 18518, 104938, 7870, 97068)]
    assert (order["subtotal_cents"], order["discount_cents"], order["total_cents"],
            order["fee_cents"]) == (125555, 18833, 106722, 8003)
    intent = await services.payments.retrieve_payment_intent(order["payment_intent_id"])
    assert intent.amount_cents == 106722 and intent.currency == "usd"
    txns = await db.transactions.find({"order_id": order["_id"]}).to_list(None)
    assert sum(t["amount_cents"] for t in txns) == 106722
    assert sum(t["platform_fee_cents"] for t in txns) == 8003
    assert sum(t["seller_amount_cents"] for t in txns) == 106722 - 8003
    assert all(t["coupon_code"] == "FIFTEEN" for t in txns)
    ledger = await db.ledger_entries.find({}).to_list(None)
    assert sum(e["amount_cents"] for e in ledger) == 98719
    assert all(e["status"] == "pending" and e["kind"] == "sale" for e in ledger)
    assert (await money.get_balance(db, ObjectId(CREATOR_ID)))["pending_cents"] == 1572
    assert (await money.get_balance(db, ObjectId(CREATOR2_ID)))["pending_cents"] == 1 + 78 + 97068
    assert (await db.coupons.find_one({"code": "FIFTEEN"}))["used_count"] == 1


@pytest.mark.gen_test
async def test_embedded_three_d_secure_and_retried_fulfilment(api, tokens, services):
    db = services.db
    token = await tokens(BUYER)
    body = (await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": {"card_token": "tok_threeDSecure2Required"}})).json
    assert body["status"] == "requires_action" and body["next_action"]
    declined = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [WIZARD], "payment_details": {"payment_method_id": "pm_card_chargeDeclined"}})
    assert declined.status == 402
    # the synchronous path and several retries at once: one delivery
    intent = await services.payments.confirm_payment_intent(body["payment_intent_id"])
    results = await asyncio.gather(*[
        fulfilment.fulfil_order(db, services.hub, services.mailer, ObjectId(body["order_id"]), intent)
        for _ in range(3)])
    assert {r["status"] for r in results} == {"paid"}
    done = await api("POST", "/api/checkout/process-payment", token=token,
                     json={"order_id": body["order_id"]})
    assert done.status == 200 and done.json["status"] == "paid"
    assert await db.transactions.count_documents({}) == 1
    assert await db.purchases.count_documents({}) == 1
    assert await db.ledger_entries.count_documents({}) == 1
    assert await db.notifications.count_documents({"type": "model_purchased"}) == 1
    assert await db.emails.count_documents({"category": "purchase"}) == 1
    assert (await money.get_balance(db, ObjectId(CREATOR_ID)))["pending_cents"] == 1849
    assert (await db.models.find_one({"_id": ObjectId(ROBOT)}))["sales_count"] == 1


@pytest.mark.gen_test
async def test_mismatched_payment_is_not_fulfilled(api, tokens, services):
    db = services.db
    token = await tokens(BUYER)
    body = (await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": {"card_token": "tok_threeDSecure2Required"}})).json
    other = await services.payments.create_payment_intent(
        100, "usd", idempotency_key="other", metadata={}, payment_method_token="tok_visa")
    with pytest.raises(Exception) as caught:
        await fulfilment.fulfil_order(db, services.hub, services.mailer, ObjectId(body["order_id"]),
                                      other)
    assert getattr(caught.value, "error_code", None) == "PAYMENT_MISMATCH"
    assert (await db.orders.find_one({"_id": ObjectId(body["order_id"])}))["status"] == \
        "requires_action"
    assert await db.purchases.count_documents({}) == 0


@pytest.mark.gen_test
async def test_webhooks_refused_without_a_secret(api):
    reply = await api("POST", "/api/webhooks/stripe", body=b'{"id":"evt_1","type":"x"}',
                      headers={"Stripe-Signature": "t=1,v1=00"})
    assert reply.status == 400 and reply.json["error_code"] == "INVALID_SIGNATURE"


@pytest.mark.gen_test
async def test_racing_ledger_writes_move_a_balance_exactly_once(services):
    """Twenty concurrent deliveries of one sale (webhook, confirmation and retries at once)
    move the seller's pending balance once and leave no operation in flight."""
    db = services.db
    seller = ObjectId(CREATOR_ID)
    before = (await money.get_balance(db, seller))["pending_cents"]
    for round_ in range(5):
        transaction = {"transaction_id": f"TXN-RACE-{round_}", "seller_id": seller,
                       "seller_amount_cents": 1000}
        await asyncio.gather(*[money.record_sale(db, transaction) for _ in range(20)])
    balance = await db.seller_balances.find_one({"_id": seller})
    assert balance["pending_cents"] == before + 5000 and balance["ops"] == []
    entries = await db.ledger_entries.find({"transaction_id": {"$regex": "^TXN-RACE-"}}).to_list(None)
    assert len(entries) == 5 and all(e["applied"] and "applied_claim" not in e for e in entries)
