"""Checkout against the local Stripe stand-in (the real `stripe` library talks to it):
success, declined card, 3-D Secure through process-payment and through the webhook,
duplicated and out-of-order webhooks, Idempotency-Key replays, concurrent checkouts, bad input."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import BUYER, BUYER2, CREATOR, CREATOR2_ID, CREATOR_ID, ROBOT, SNOWMAN

from tests.stripe_stub import BALLOON, HAMMER, WIZARD, count, sign, stripe_settings

# these tests count orders, purchases and sales from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

VISA = {"card_token": "tok_visa", "billing_address": {"line1": "1 Main St", "country": "US"}}
THREE_DS = {"payment_method_id": "pm_card_threeDSecure2Required"}


@pytest.fixture
def settings_overrides(stripe_stub):
    return stripe_settings(stripe_stub)


@pytest.fixture
def hook_url(base_url):
    return base_url + "/api/webhooks/stripe"


async def fill_cart(api, token, *model_ids):
    for model_id in model_ids:
        reply = await api("POST", "/api/cart", json={"model_id": model_id}, token=token)
        assert reply.status == 201, reply.json


async def delivered_once(db, order_id, lines: int, sellers: int):
    """Everything a paid order writes exists exactly once."""
    oid = ObjectId(order_id)
    order = await db.orders.find_one({"_id": oid})
    assert order["status"] == "paid"
    txns = await db.transactions.find({"order_id": oid}).to_list(None)
    assert len(txns) == lines
    for txn in txns:
        assert await count(db, "purchases", {"user_id": order["buyer_id"],
                                             "model_id": txn["model_id"]}) == 1
        assert await count(db, "ledger_entries", {"transaction_id": txn["transaction_id"]}) == 1
    assert await count(db, "emails", {"subject": {"$regex": order["number"]}}) == 1
    assert await count(db, "notifications", {"type": "model_purchased",
                                             "data.order_id": order_id}) == sellers
    return order


@pytest.mark.gen_test
async def test_successful_checkout(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    await fill_cart(api, token, ROBOT, WIZARD)
    reply = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT, WIZARD], "payment_method": "card", "payment_details": VISA})
    assert reply.status == 200, reply.json
    body = reply.json
    assert body["status"] == "paid"
    assert body["total_amount"] == 20.98 and body["platform_fee"] == 1.57
    assert body["transaction_id"].startswith("TXN-")
    assert [p["model_id"] for p in body["purchases"]] == [ROBOT, WIZARD]
    assert "/api/downloads/" in body["purchases"][0]["download_url"]
    assert stripe_stub.charges == 1 and stripe_stub.created == 1
    intent = next(iter(stripe_stub.intents.values()))
    assert intent["amount"] == 2098 and intent["metadata"]["order_id"] == body["order_id"]
    db = services.db
    await delivered_once(db, body["order_id"], lines=2, sellers=2)
    assert await count(db, "cart_items") == 0
    robot = await db.models.find_one({"_id": ObjectId(ROBOT)})
    assert robot["sales_count"] == 1
    balance = await db.seller_balances.find_one({"_id": ObjectId(CREATOR_ID)})
    assert balance["pending_cents"] == 1999 - 150 and balance["ops"] == []
    # the seller's notification arrived with the sale
    note = await db.notifications.find_one({"user_id": ObjectId(CREATOR2_ID), "type": "model_purchased"})
    assert note["data"]["models"][0]["model_id"] == WIZARD
    # bought models cannot go into the cart again
    again = await api("POST", "/api/cart", json={"model_id": ROBOT}, token=token)
    assert again.status == 409 and again.json["error_code"] == "ALREADY_PURCHASED"


@pytest.mark.gen_test
async def test_declined_card_buys_nothing_and_keeps_cart(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    await fill_cart(api, token, ROBOT)
    reply = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": {"card_token": "tok_chargeDeclined"}})
    assert reply.status == 402, reply.json
    assert reply.json["error_code"] == "PAYMENT_FAILED"
    assert reply.json["decline_code"] == "generic_decline"
    db = services.db
    assert await count(db, "purchases") == 0 and await count(db, "transactions") == 0
    assert await count(db, "ledger_entries") == 0 and await count(db, "cart_items") == 1
    assert (await db.orders.find_one({}))["status"] == "failed"
    assert stripe_stub.charges == 0
    # a new attempt with a good card goes through
    retry = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": VISA})
    assert retry.status == 200 and retry.json["status"] == "paid"
    assert stripe_stub.charges == 1


@pytest.mark.gen_test
async def test_three_d_secure_through_process_payment(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": THREE_DS})
    assert reply.status == 200, reply.json
    body = reply.json
    assert body["status"] == "requires_action" and body["purchases"] == []
    assert body["client_secret"].startswith(body["payment_intent_id"])
    assert body["next_action"]["type"] == "use_stripe_sdk"
    # not authenticated yet: still waiting, nothing bought
    waiting = await api("POST", "/api/checkout/process-payment", token=token,
                        json={"order_id": body["order_id"]})
    assert waiting.status == 200 and waiting.json["status"] == "requires_action"
    assert await count(services.db, "purchases") == 0
    stripe_stub.authenticate(body["payment_intent_id"])
    done = await api("POST", "/api/checkout/process-payment", token=token,
                     json={"payment_intent_id": body["payment_intent_id"]})
    assert done.status == 200, done.json
    assert done.json["status"] == "paid" and done.json["purchases"][0]["model_id"] == ROBOT
    await delivered_once(services.db, body["order_id"], lines=1, sellers=1)
    assert stripe_stub.charges == 1


@pytest.mark.gen_test
async def test_three_d_secure_through_webhook(api, tokens, services, stripe_stub, hook_url):
    token = await tokens(BUYER)
    body = (await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT], "payment_details": THREE_DS})).json
    intent = stripe_stub.authenticate(body["payment_intent_id"])
    response = await stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent)
    assert response.code == 200, response.body
    await delivered_once(services.db, body["order_id"], lines=1, sellers=1)
    # the client's later process-payment sees the paid order
    done = await api("POST", "/api/checkout/process-payment", token=token,
                     json={"order_id": body["order_id"]})
    assert done.status == 200 and done.json["status"] == "paid"
    await delivered_once(services.db, body["order_id"], lines=1, sellers=1)


@pytest.mark.gen_test
async def test_webhook_twice_and_out_of_order_fulfils_once(api, tokens, services, stripe_stub,
                                                           hook_url):
    token = await tokens(BUYER)
    body = (await api("POST", "/api/checkout", token=token, json={
        "model_ids": [ROBOT, WIZARD], "payment_details": THREE_DS})).json
    pi_id = body["payment_intent_id"]
    stale = dict(stripe_stub.intents[pi_id], status="requires_payment_method")
    intent = stripe_stub.authenticate(pi_id)
    # succeeded twice (same id), a stale payment_failed after it, another succeeded, and the
    # synchronous path, concurrently
    replies = await asyncio.gather(
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_1"),
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_1"),
        api("POST", "/api/checkout/process-payment", token=token, json={"order_id": body["order_id"]}),
        stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent, event_id="evt_2"))
    assert [r.code for r in replies[:2]] + [replies[3].code] == [200, 200, 200]
    assert replies[2].status == 200 and replies[2].json["status"] == "paid"
    failed = await stripe_stub.send_event(hook_url, "payment_intent.payment_failed", stale,
                                          event_id="evt_3")
    assert failed.code == 200
    again = await stripe_stub.send_event(hook_url, "payment_intent.succeeded", intent,
                                         event_id="evt_1")
    assert again.code == 200 and b"duplicate" in again.body
    await delivered_once(services.db, body["order_id"], lines=2, sellers=2)
    assert await count(services.db, "webhook_events") == 3
    robot = await services.db.models.find_one({"_id": ObjectId(ROBOT)})
    assert robot["sales_count"] == 1


@pytest.mark.gen_test
async def test_webhook_signature_and_unknown_events(api, services, stripe_stub, hook_url):
    bad = await stripe_stub.send_event(hook_url, "payment_intent.succeeded", {"id": "pi_x"},
                                       secret="whsec_wrong")
    assert bad.code == 400 and b"INVALID_SIGNATURE" in bad.body
    missing = await api("POST", "/api/webhooks/stripe", body=b"{}")
    assert missing.status == 400 and missing.json["error_code"] == "INVALID_SIGNATURE"
    tampered = await api("POST", "/api/webhooks/stripe", body=b'{"id":"evt_9","type":"x"}',
                         headers={"Stripe-Signature": sign('{"id":"evt_9","type":"y"}', "whsec_x")})
    assert tampered.status == 400
    unknown = await stripe_stub.send_event(hook_url, "customer.created", {"id": "cus_1"})
    assert unknown.code == 200 and b"ignored" in unknown.body
    forged = await stripe_stub.send_event(hook_url, "payment_intent.succeeded",
                                          {"id": "pi_unknown", "amount": 1, "currency": "usd"})
    assert forged.code == 200 and b"unknown_payment" in forged.body
    assert await count(services.db, "orders", {"status": "paid"}) == 0


@pytest.mark.gen_test
async def test_same_idempotency_key_charges_once(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    request = {"model_ids": [ROBOT], "payment_details": VISA}
    headers = {"Idempotency-Key": "checkout-123"}
    first = await api("POST", "/api/checkout", token=token, json=request, headers=headers)
    second = await api("POST", "/api/checkout", token=token, json=request, headers=headers)
    assert first.status == second.status == 200
    assert first.json["order_id"] == second.json["order_id"]
    assert first.json["transaction_id"] == second.json["transaction_id"]
    assert await count(services.db, "orders") == 1
    assert stripe_stub.created == 1 and stripe_stub.charges == 1
    other = await api("POST", "/api/checkout", token=token, headers=headers,
                      json={"model_ids": [WIZARD], "payment_details": VISA})
    assert other.status == 409 and other.json["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count(services.db, "orders") == 1
    # the key belongs to the buyer: another buyer may use the same string
    token2 = await tokens(BUYER2)
    theirs = await api("POST", "/api/checkout", token=token2, json=request, headers=headers)
    assert theirs.status == 200 and theirs.json["order_id"] != first.json["order_id"]


@pytest.mark.gen_test
async def test_declined_replay_with_same_key_answers_the_same(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    request = {"model_ids": [ROBOT], "payment_details": {"card_token": "tok_chargeDeclined"}}
    headers = {"Idempotency-Key": "declined-1"}
    first = await api("POST", "/api/checkout", token=token, json=request, headers=headers)
    second = await api("POST", "/api/checkout", token=token, json=request, headers=headers)
    assert first.status == second.status == 402
    assert stripe_stub.created == 1 and await count(services.db, "orders") == 1


@pytest.mark.gen_test
async def test_concurrent_checkouts_of_one_cart_charge_once(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    await fill_cart(api, token, ROBOT, WIZARD)
    request = {"model_ids": [ROBOT, WIZARD], "payment_details": VISA}
    replies = await asyncio.gather(*[api("POST", "/api/checkout", token=token, json=request)
                                     for _ in range(5)])
    statuses = sorted(r.status for r in replies)
    assert statuses[0] == 200 and all(s == 409 for s in statuses[1:]), [r.json for r in replies]
    assert {r.json["error_code"] for r in replies if r.status == 409} <= {
        "CHECKOUT_IN_PROGRESS", "ALREADY_PURCHASED"}
    assert stripe_stub.charges == 1
    assert await count(services.db, "purchases") == 2
    assert await count(services.db, "checkout_claims") == 0


@pytest.mark.gen_test
async def test_free_model_is_bought_without_payment(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/checkout", token=token, json={"model_ids": [SNOWMAN]})
    assert reply.status == 200, reply.json
    assert reply.json["status"] == "paid" and reply.json["total_amount"] == 0
    assert stripe_stub.created == 0
    assert await count(services.db, "purchases", {"model_id": ObjectId(SNOWMAN)}) == 1
    assert await count(services.db, "ledger_entries") == 0


@pytest.mark.gen_test
async def test_checkout_refuses_unbuyable_models(api, tokens, services, stripe_stub):
    creator = await tokens(CREATOR)
    own = await api("POST", "/api/checkout", token=creator,
                    json={"model_ids": [ROBOT], "payment_details": VISA})
    assert own.status == 400 and own.json["error_code"] == "CANNOT_BUY_OWN_MODEL"
    await services.db.models.update_one({"_id": ObjectId(HAMMER)}, {"$set": {"status": "pending"}})
    token = await tokens(BUYER)
    hidden = await api("POST", "/api/checkout", token=token,
                       json={"model_ids": [ROBOT, HAMMER], "payment_details": VISA})
    assert hidden.status == 404 and hidden.json["reason"] == "MODEL_NOT_AVAILABLE"
    assert await count(services.db, "orders") == 0 and stripe_stub.created == 0


@pytest.mark.gen_test
async def test_checkout_bad_input_writes_nothing(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    cases = [
        (b"{not json", 400),
        ({"model_ids": []}, 422),
        ({"model_ids": "abc"}, 422),
        ({"model_ids": [ROBOT], "payment_details": VISA, "extra": 1}, 422),
        ({"model_ids": [ROBOT], "payment_details": {"card_token": "tok_visa", "cvv": "1"}}, 422),
        ({"model_ids": [ROBOT], "payment_method": "paypal", "payment_details": VISA}, 422),
        ({"model_ids": [ROBOT], "payment_details": {}}, 422),
        ({"model_ids": [ROBOT], "payment_details": {"card_token": "tok_unknown"}}, 402),
        ({"model_ids": ["not-an-id"], "payment_details": VISA}, 404),
        ({"model_ids": ["652000000000000000009999"], "payment_details": VISA}, 404),
        ({"model_ids": [ROBOT], "coupon_code": "NOPE", "payment_details": VISA}, 404),
        ({}, 422),
    ]
    for payload, status in cases:
        kwargs = {"body": payload} if isinstance(payload, bytes) else {"json": payload}
        reply = await api("POST", "/api/checkout", token=token, **kwargs)
        assert reply.status == status, (payload, reply.json)
        assert reply.json["error_code"] and "detail" in reply.json
    bad_key = await api("POST", "/api/checkout", token=token, headers={"Idempotency-Key": "x" * 300},
                        json={"model_ids": [ROBOT], "payment_details": VISA})
    assert bad_key.status == 422
    assert await count(services.db, "purchases") == 0
    assert await count(services.db, "orders", {"status": {"$in": ["pending", "paid"]}}) == 0
    assert await count(services.db, "checkout_claims") == 0
    assert stripe_stub.charges == 0
    anonymous = await api("POST", "/api/checkout", json={"model_ids": [ROBOT]})
    assert anonymous.status == 401


@pytest.mark.gen_test
async def test_process_payment_and_payment_methods(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    methods = await api("GET", "/api/checkout/payment-methods", token=token)
    assert methods.status == 200 and methods.json["payment_methods"][0]["id"] == "card"
    assert methods.json["provider"] == "stripe" and methods.json["test_mode"] is True
    body = (await api("POST", "/api/checkout", token=token, json={
        "model_ids": [BALLOON], "payment_details": THREE_DS})).json
    other = await tokens(BUYER2)
    for payload, status in [({"order_id": body["order_id"]}, 404),
                            ({"payment_intent_id": body["payment_intent_id"]}, 404)]:
        reply = await api("POST", "/api/checkout/process-payment", token=other, json=payload)
        assert reply.status == status
    for payload, status in [({}, 422), ({"order_id": "bad"}, 404), ({"order_id": 5}, 422),
                            ({"order_id": body["order_id"], "x": 1}, 422)]:
        reply = await api("POST", "/api/checkout/process-payment", token=token, json=payload)
        assert reply.status == status, (payload, reply.json)
    assert (await api("GET", "/api/checkout/payment-methods")).status == 401
