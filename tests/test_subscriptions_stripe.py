"""Subscriptions are billed through the same payment provider as checkout:
the real `stripe` library against the local Stripe stand-in, no patching."""
from __future__ import annotations

import pytest
from demo_accounts import BUYER, BUYER_ID

from tests.stripe_stub import stripe_settings


@pytest.fixture
def settings_overrides(stripe_stub):
    return stripe_settings(stripe_stub)


def body(card: str, plan: str = "pro") -> dict:
    return {"plan": plan, "payment_method": "card", "payment_details": {"card_token": card}}


@pytest.mark.gen_test
async def test_subscription_is_charged_through_stripe(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    declined = await api("POST", "/api/subscriptions/subscribe", token=token,
                         json=body("tok_chargeDeclined"))
    assert declined.status == 402 and declined.json["error_code"] == "PAYMENT_FAILED"
    assert await services.db.subscriptions.count_documents({}) == 0 and stripe_stub.charges == 0

    reply = await api("POST", "/api/subscriptions/subscribe", token=token, json=body("tok_visa"))
    assert reply.status == 201, reply.json
    assert stripe_stub.charges == 1
    intent = stripe_stub.intents[reply.json["payment_intent_id"]]
    assert intent["status"] == "succeeded" and intent["amount"] == 1299
    assert intent["currency"] == "usd"
    assert intent["metadata"]["kind"] == "subscription" and intent["metadata"]["plan"] == "pro"
    assert intent["metadata"]["user_id"] == BUYER_ID
    stored = await services.db.subscriptions.find_one({})
    assert stored["provider"] == "stripe" and stored["payment_intent_id"] == intent["id"]
    assert stored["amount_cents"] == 1299 and stored["status"] == "active"
