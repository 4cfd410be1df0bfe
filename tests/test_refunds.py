"""Refunds through the Stripe stand-in: rights revoked, ledger reversed, once only; staff only."""
from __future__ import annotations

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER, CREATOR2_ID, CREATOR_ID, MODERATOR, ROBOT

from tests.stripe_stub import WIZARD, count, stripe_settings

# these tests count sales, purchases and balances from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

VISA = {"card_token": "tok_visa"}


@pytest.fixture
def settings_overrides(stripe_stub):
    return stripe_settings(stripe_stub)


async def buy(api, token, *model_ids):
    reply = await api("POST", "/api/checkout", token=token,
                      json={"model_ids": list(model_ids), "payment_details": VISA})
    assert reply.status == 200, reply.json
    return reply.json


@pytest.mark.gen_test
async def test_refund_revokes_rights_and_reverses_ledger(api, tokens, services, stripe_stub):
    db = services.db
    buyer = await tokens(BUYER)
    order = await buy(api, buyer, ROBOT, WIZARD)
    robot_txn, wizard_txn = order["transaction_ids"]
    assert (await api("GET", f"/api/purchases/{ROBOT}/download", token=buyer)).status == 200
    admin = await tokens(ADMIN)
    reply = await api("POST", f"/api/transactions/{robot_txn}/refund", token=admin, json={})
    assert reply.status == 200, reply.json
    assert reply.json["payment_status"] == "refunded" and reply.json["amount"] == 19.99
    refund = next(iter(stripe_stub.refunds.values()))
    assert refund["amount"] == 1999 and refund["payment_intent"] in stripe_stub.intents
    # download rights revoked, the other line untouched
    revoked = await api("GET", f"/api/purchases/{ROBOT}/download", token=buyer)
    assert revoked.status == 403 and revoked.json["error_code"] == "PURCHASE_REVOKED"
    link = await api("GET", f"/api/purchases/{robot_txn}/download-link", token=buyer)
    assert link.status == 403
    assert (await api("GET", f"/api/purchases/{WIZARD}/download", token=buyer)).status == 200
    # ledger: sale + negative refund, balance back to zero for that seller
    entries = await db.ledger_entries.find({"transaction_id": robot_txn}).to_list(None)
    assert sorted((e["kind"], e["amount_cents"]) for e in entries) == [("refund", -1849),
                                                                      ("sale", 1849)]
    balance = await db.seller_balances.find_one({"_id": ObjectId(CREATOR_ID)})
    assert balance["pending_cents"] == 0 and balance["ops"] == []
    other = await db.seller_balances.find_one({"_id": ObjectId(CREATOR2_ID)})
    assert other["pending_cents"] == 99 - 7
    assert (await db.models.find_one({"_id": ObjectId(ROBOT)}))["sales_count"] == 0
    assert (await db.orders.find_one({"_id": ObjectId(order["order_id"])}))["status"] == "paid"
    # a second refund is refused, and nothing moves
    again = await api("POST", f"/api/transactions/{robot_txn}/refund", token=admin)
    assert again.status == 409 and again.json["error_code"] == "ALREADY_REFUNDED"
    assert len(stripe_stub.refunds) == 1
    assert await count(db, "ledger_entries", {"transaction_id": robot_txn}) == 2
    # refunding the last line refunds the order; the model can be bought again
    last = await api("POST", f"/api/transactions/{wizard_txn}/refund", token=admin)
    assert last.status == 200
    assert (await db.orders.find_one({"_id": ObjectId(order["order_id"])}))["status"] == "refunded"
    rebuy = await buy(api, buyer, ROBOT)
    assert (await api("GET", f"/api/purchases/{ROBOT}/download", token=buyer)).status == 200
    assert rebuy["transaction_id"] != robot_txn


@pytest.mark.gen_test
async def test_refund_needs_revenue_permission_and_a_real_transaction(api, tokens, stripe_stub):
    buyer = await tokens(BUYER)
    txn = (await buy(api, buyer, ROBOT))["transaction_id"]
    assert (await api("POST", f"/api/transactions/{txn}/refund")).status == 401
    assert (await api("POST", f"/api/transactions/{txn}/refund", token=buyer)).status == 403
    moderator = await tokens(MODERATOR)
    assert (await api("POST", f"/api/transactions/{txn}/refund", token=moderator)).status == 403
    admin = await tokens(ADMIN)
    for bad in ("TXN-2020-999999", "nope", "652000000000000000000001"):
        reply = await api("POST", f"/api/transactions/{bad}/refund", token=admin)
        assert reply.status == 404 and reply.json["reason"] == "TRANSACTION_NOT_FOUND"
    for payload, status in [(b"{bad", 400), ({"unknown": 1}, 422), ({"reason": 5}, 422)]:
        kwargs = {"body": payload} if isinstance(payload, bytes) else {"json": payload}
        reply = await api("POST", f"/api/transactions/{txn}/refund", token=admin, **kwargs)
        assert reply.status == status
    assert stripe_stub.refunds == {}


@pytest.mark.gen_test
async def test_charge_refunded_webhook_refunds_the_order(api, tokens, services, stripe_stub,
                                                         base_url):
    buyer = await tokens(BUYER)
    order = await buy(api, buyer, ROBOT, WIZARD)
    pi_id = (await services.db.orders.find_one({"_id": ObjectId(order["order_id"])}))[
        "payment_intent_id"]
    stripe_stub.intents[pi_id]["amount_refunded"] = stripe_stub.intents[pi_id]["amount"]
    hook = base_url + "/api/webhooks/stripe"
    for _ in range(2):
        reply = await stripe_stub.send_event(hook, "charge.refunded", stripe_stub.charge_of(pi_id),
                                             event_id="evt_refund")
        assert reply.code == 200
    assert await count(services.db, "transactions", {"payment_status": "refunded"}) == 2
    assert await count(services.db, "purchases", {"status": "revoked"}) == 2
    assert await count(services.db, "ledger_entries", {"kind": "refund"}) == 2
    stored = await services.db.orders.find_one({"_id": ObjectId(order["order_id"])})
    assert stored["status"] == "refunded"
