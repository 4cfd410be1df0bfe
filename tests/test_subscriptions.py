"""Pricing plans and subscriptions over real HTTP with the embedded test payment provider:
tok_visa subscribes, tok_chargeDeclined is 402 with nothing stored, cancel keeps access until
the period end, a second cancel is 409, concurrent subscribes charge once."""
import asyncio

import pytest
from demo_accounts import BUYER, CREATOR
from earnings_builders import cents, uid


def subscribe_body(plan="pro", token="tok_visa", **extra):
    return {"plan": plan, "payment_method": "card", "payment_details": {"card_token": token},
            **extra}


@pytest.mark.gen_test
async def test_plans_are_public(api, tokens):
    reply = await api("GET", "/api/pricing/plans")
    assert reply.status == 200
    plans = {p["id"]: p for p in reply.json["items"]}
    assert list(plans) == ["free", "pro", "studio"]
    assert plans["free"]["price"] == 0 and cents(plans["pro"]["price"]) == 1299
    assert cents(plans["studio"]["price"]) == 4999 and plans["pro"]["features"]
    assert reply.json["current_subscription"] is None
    signed_in = await api("GET", "/api/pricing/plans", token=await tokens(BUYER))
    assert signed_in.status == 200 and signed_in.json["current_subscription"] is None


@pytest.mark.gen_test
async def test_subscribe_and_cancel(api, services, tokens):
    db = services.db
    token = await tokens(BUYER)
    reply = await api("POST", "/api/subscriptions/subscribe", token=token, json=subscribe_body())
    assert reply.status == 201, reply.json
    sub = reply.json
    assert sub["plan"] == "pro" and sub["status"] == "active" and sub["has_access"] is True
    assert cents(sub["amount"]) == 1299 and sub["payment_intent_id"].startswith("pi_")
    assert sub["current_period_end"] > sub["created_at"]
    stored = await db.subscriptions.find({"user_id": await uid(db, BUYER)}).to_list(None)
    assert len(stored) == 1 and stored[0]["status"] == "active"
    intent = await services.payments.retrieve_payment_intent(sub["payment_intent_id"])
    assert intent.status == "succeeded" and intent.amount_cents == 1299

    again = await api("POST", "/api/subscriptions/subscribe", token=token,
                      json=subscribe_body("studio"))
    assert again.status == 409 and again.json["error_code"] == "ALREADY_SUBSCRIBED"
    plans = await api("GET", "/api/pricing/plans", token=token)
    assert plans.json["current_subscription"]["id"] == sub["id"]

    cancel = await api("PUT", "/api/subscriptions/cancel", token=token)
    assert cancel.status == 200
    assert cancel.json["status"] == "canceled" and cancel.json["canceled_at"]
    assert cancel.json["has_access"] is True                 # until the period end
    assert cancel.json["current_period_end"] == sub["current_period_end"]
    twice = await api("PUT", "/api/subscriptions/cancel", token=token)
    assert twice.status == 409 and twice.json["error_code"] == "NOT_SUBSCRIBED"
    plans = await api("GET", "/api/pricing/plans", token=token)
    assert plans.json["current_subscription"]["status"] == "canceled"
    other = await api("PUT", "/api/subscriptions/cancel", token=await tokens(CREATOR))
    assert other.status == 409


@pytest.mark.gen_test
async def test_declined_card_stores_nothing(api, services, tokens):
    db = services.db
    token = await tokens(BUYER)
    reply = await api("POST", "/api/subscriptions/subscribe", token=token,
                      json=subscribe_body(token="tok_chargeDeclined"))
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_FAILED"
    assert await db.subscriptions.count_documents({}) == 0
    assert await db.subscription_claims.count_documents({}) == 0
    unknown = await api("POST", "/api/subscriptions/subscribe", token=token,
                        json=subscribe_body(token="tok_nonsense"))
    assert unknown.status == 402 and await db.subscriptions.count_documents({}) == 0
    ok = await api("POST", "/api/subscriptions/subscribe", token=token, json=subscribe_body())
    assert ok.status == 201                                  # the claim was released


@pytest.mark.gen_test
async def test_subscribe_bad_input(api, services, tokens):
    token = await tokens(BUYER)
    assert (await api("POST", "/api/subscriptions/subscribe", json=subscribe_body())).status == 401
    assert (await api("PUT", "/api/subscriptions/cancel")).status == 401
    bad = [subscribe_body("platinum"), subscribe_body("free"), {"plan": "pro"},
           subscribe_body(payment_method="crypto"), subscribe_body(coupon="X"),
           {"plan": "pro", "payment_details": {"card_token": "tok_visa", "cvc": "123"}},
           {"plan": 5, "payment_details": {"card_token": "tok_visa"}}, []]
    for payload in bad:
        reply = await api("POST", "/api/subscriptions/subscribe", token=token, json=payload)
        assert reply.status == 422 and reply.json["error_code"] == "VALIDATION_ERROR", payload
    malformed = await api("POST", "/api/subscriptions/subscribe", token=token, body="{",
                          headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert await services.db.subscriptions.count_documents({}) == 0
    assert (await api("GET", "/api/subscriptions/subscribe", token=token)).status == 405


@pytest.mark.gen_test
async def test_concurrent_subscribes_charge_once(api, services, tokens):
    token = await tokens(BUYER)
    replies = await asyncio.gather(*[
        api("POST", "/api/subscriptions/subscribe", token=token, json=subscribe_body())
        for _ in range(4)])
    statuses = sorted(r.status for r in replies)
    assert statuses.count(201) == 1 and set(statuses) <= {201, 409}
    assert await services.db.subscriptions.count_documents({}) == 1
