"""Paid course enrolment through the real `stripe` library against the local Stripe stand-in:
charge, decline, 3-D Secure completed in the browser, and racing enrolments of one user
(every extra charge refunded, one enrolment)."""
from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId
from demo_accounts import ADMIN, BUYER

from tests.stripe_stub import stripe_settings


@pytest.fixture
def settings_overrides(stripe_stub):
    return stripe_settings(stripe_stub)


async def paid_course(api, tokens, price=29.99) -> str:
    reply = await api("POST", "/api/admin/courses", token=await tokens(ADMIN),
                      json={"title": "Texturing", "difficulty": "intermediate", "price": price,
                            "video_url": "/videos/texturing.mp4"})
    assert reply.status == 201, reply.json
    return reply.json["id"]


async def enroll(api, token, course_id, **body):
    return await api("POST", f"/api/courses/{course_id}/enroll", token=token, json=body)


@pytest.mark.gen_test
async def test_charge_and_decline(api, tokens, services, stripe_stub):
    buyer = await tokens(BUYER)
    course_id = await paid_course(api, tokens)
    reply = await enroll(api, buyer, course_id, payment_method_token="tok_chargeDeclined")
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_FAILED"
    assert await services.db.course_enrollments.count_documents({}) == 0

    reply = await enroll(api, buyer, course_id, payment_method_token="pm_card_visa")
    assert reply.status == 201, reply.json
    assert reply.json["video_url"] == "/videos/texturing.mp4"
    assert stripe_stub.charges == 1
    intent = next(i for i in stripe_stub.intents.values() if i["status"] == "succeeded")
    assert intent["amount"] == 2999 and intent["currency"] == "usd"
    assert intent["metadata"] == {"kind": "course_enrollment", "course_id": course_id,
                                  "user_id": "650000000000000000000005"}


@pytest.mark.gen_test
async def test_three_d_secure_completed_in_the_browser(api, tokens, services, stripe_stub):
    buyer = await tokens(BUYER)
    course_id = await paid_course(api, tokens)
    reply = await enroll(api, buyer, course_id, payment_method_token="tok_threeDSecure2Required")
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_REQUIRES_ACTION"
    intent_id = reply.json["payment_intent_id"]
    reply = await enroll(api, buyer, course_id, payment_intent_id=intent_id)
    assert reply.status == 402 and reply.json["error_code"] == "PAYMENT_REQUIRES_ACTION"
    stripe_stub.authenticate(intent_id)
    reply = await enroll(api, buyer, course_id, payment_intent_id=intent_id)
    assert reply.status == 201, reply.json
    enrollment = await services.db.course_enrollments.find_one({})
    assert enrollment["payment_intent_id"] == intent_id


@pytest.mark.gen_test
async def test_racing_paid_enrollments_keep_one_charge(api, tokens, services, stripe_stub):
    buyer = await tokens(BUYER)
    course_id = await paid_course(api, tokens, price=12)
    replies = await asyncio.gather(*[
        enroll(api, buyer, course_id, payment_method_token="tok_visa") for _ in range(4)])
    statuses = sorted(r.status for r in replies)
    assert statuses[0] == 201 and statuses[1:] == [409] * 3, statuses
    course = await services.db.courses.find_one({"_id": ObjectId(course_id)})
    assert course["enrollment_count"] == 1
    assert await services.db.course_enrollments.count_documents({}) == 1
    kept = (await services.db.course_enrollments.find_one({}))["payment_intent_id"]
    succeeded = [i for i in stripe_stub.intents.values() if i["status"] == "succeeded"]
    assert sum(i["amount"] - i["amount_refunded"] for i in succeeded) == 1200
    assert stripe_stub.intents[kept]["amount_refunded"] == 0
    assert len(stripe_stub.refunds) == stripe_stub.charges - 1
