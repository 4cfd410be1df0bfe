"""Periodic jobs: one run across two instances; subscription renewal at period end through
the Stripe stand-in, with dunning; a stranded coupon use given back; matured earnings made
available with a "funds available" notification; an unattached upload deleted. Time is moved
by the data (a period end, a creation date set in the past), never by sleeping."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from checkout_support import THREE_DS, checkout, coupon_counts, new_coupon
from conftest import test_settings as settings_for
from demo_accounts import BUYER, CREATOR, ROBOT
from upload_support import image_bytes, stored_objects, upload

from documents import earnings
from documents.common import utcnow
from tests.instances import start_instance, stop_instance
from tests.stripe_stub import stripe_settings

# these tests count earnings, coupon uses and orders from zero
pytestmark = pytest.mark.usefixtures("no_past_sales")

EVERY_SECOND = "* * * * * *"
FAST = {"cron_renewals": EVERY_SECOND, "cron_earnings": EVERY_SECOND,
        "cron_reclaim": EVERY_SECOND, "cron_uploads": EVERY_SECOND}


async def until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


@pytest.fixture
def settings_overrides(stripe_stub):
    return {**stripe_settings(stripe_stub), **FAST, "renewal_retry_hours": 0.0,
            "renewal_tries": 2}


def _completed(text: str, function: str) -> float:
    for line in text.splitlines():
        if line.startswith("hwc3d_jobs_total{") and f'function="{function}"' in line \
                and 'outcome="complete"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.gen_test(timeout=90)
async def test_periodic_job_runs_once_across_two_instances(tmp_path, own_redis):
    now = datetime.now(UTC)
    second = (now.second + 4) % 60
    settings = settings_for(tmp_path, redis_url=own_redis.url,
                             cron_earnings=f"* * * * * {second}")
    first = await start_instance(settings)
    second_instance = await start_instance(settings, db=first.services.db)
    instances = (first, second_instance)
    try:
        async def ran() -> float:
            total = 0.0
            for inst in instances:
                status, _ = await inst.call("GET", "/healthz")
                text = inst.services.metrics.registry and await _metrics(inst)
                total += _completed(text, "release_earnings")
            return total
        assert await until(ran, timeout=30) == 1
        deadline = time.monotonic() + 3  # the tick's window is over: still one run
        while time.monotonic() < deadline:
            assert await ran() == 1
            await asyncio.sleep(0.2)
    finally:
        for inst in instances:
            await stop_instance(inst)


async def _metrics(inst) -> str:
    from tornado.httpclient import AsyncHTTPClient

    response = await AsyncHTTPClient().fetch(inst.base_url + "/metrics")
    return response.body.decode()


@pytest.mark.gen_test(timeout=60)
async def test_subscription_renews_through_stripe_at_period_end(api, tokens, services,
                                                                stripe_stub):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/subscriptions/subscribe", token=token, json={
        "plan": "pro", "payment_method": "card", "payment_details": {"card_token": "pm_card_visa"}})
    assert reply.status in (200, 201), reply.json
    sub = await services.db.subscriptions.find_one({})
    ended = utcnow() - timedelta(minutes=1)
    await services.db.subscriptions.update_one(
        {"_id": sub["_id"]}, {"$set": {"current_period_end": ended}})

    async def renewed():
        doc = await services.db.subscriptions.find_one({"_id": sub["_id"]})
        return doc if doc["current_period_end"] > utcnow() else None
    doc = await until(renewed)
    assert doc["status"] == "active" and doc["current_period_start"] == ended
    assert doc["current_period_end"] == ended + timedelta(days=30)
    assert stripe_stub.charges == 2
    assert await services.db.renewals.count_documents({"subscription_id": sub["_id"]}) == 1
    await until(lambda: services.db.emails.find_one({"subject": {"$regex": "renewed"}}))
    mine = await api("GET", "/api/pricing/plans", token=token)
    assert mine.status == 200 and "payment_method" not in str(mine.json)


@pytest.mark.gen_test(timeout=60)
async def test_declined_renewal_goes_past_due_then_canceled(api, tokens, services, stripe_stub):
    token = await tokens(BUYER)
    reply = await api("POST", "/api/subscriptions/subscribe", token=token, json={
        "plan": "pro", "payment_method": "card", "payment_details": {"card_token": "pm_card_visa"}})
    assert reply.status in (200, 201), reply.json
    sub = await services.db.subscriptions.find_one({})
    await services.db.subscriptions.update_one(
        {"_id": sub["_id"]}, {"$set": {"current_period_end": utcnow() - timedelta(minutes=1),
                                       "payment_method": "pm_card_chargeDeclined"}})

    async def canceled():
        doc = await services.db.subscriptions.find_one({"_id": sub["_id"]})
        return doc if doc["status"] == "canceled" else None
    doc = await until(canceled)
    assert doc["renewal_attempt"] == 2 and stripe_stub.charges == 1

    async def billing_emails():
        found = [e["subject"] async for e in services.db.emails.find({"category": "billing"})]
        return found if len(found) >= 2 else None
    subjects = await until(billing_emails)
    assert subjects.count("Your HWC3D subscription payment failed") == 1
    assert subjects.count("Your HWC3D subscription was canceled") == 1


@pytest.mark.gen_test(timeout=60)
async def test_stranded_coupon_use_is_given_back(api, tokens, services):
    db = services.db
    await new_coupon(db, max_uses=1)
    held = await checkout(api, await tokens(BUYER), THREE_DS)
    assert held.status in (200, 202), held.json
    assert (await coupon_counts(db))[1:] == (1, 0)  # the only use is held
    order = await db.orders.find_one({"coupon_hold": "held"})
    await db.orders.update_one({"_id": order["_id"]},
                               {"$set": {"created_at": utcnow() - timedelta(hours=1)}})

    async def given_back():  # the order is marked released before the coupon forgets the op
        released = (await db.orders.find_one({"_id": order["_id"]}))["coupon_hold"] == "released"
        return released and (await db.coupons.find_one({"code": "HALF"}))["ops"] == []
    await until(given_back)
    assert (await coupon_counts(db)) == (0, 0, 1)
    assert (await db.orders.find_one({"_id": order["_id"]}))["status"] == "canceled"


@pytest.mark.gen_test(timeout=60)
async def test_matured_earnings_become_available_with_a_notification(api, tokens, services):
    db = services.db
    bought = await api("POST", "/api/checkout", token=await tokens(BUYER), json={
        "model_ids": [ROBOT], "payment_details": {"payment_method_id": "pm_card_visa"}})
    assert bought.status in (200, 201), bought.json
    line = await db.ledger_entries.find_one({"kind": "sale"})
    assert line["status"] == "pending"
    await db.ledger_entries.update_one(
        {"_id": line["_id"]}, {"$set": {"available_at": utcnow() - timedelta(seconds=1)}})

    # the notice of this sale (a notice of the demo past sales may have gone out before the
    # fixture cleared them: it announces another amount)
    this_sale = {"user_id": line["seller_id"], "type": "funds_available",
                 "data.amount": line["amount_cents"] / 100}
    await until(lambda: db.notifications.find_one(this_sale))
    balance = await db.seller_balances.find_one({"_id": line["seller_id"]})
    assert balance["available_cents"] == line["amount_cents"] and balance["pending_cents"] == 0
    await until(lambda: db.emails.find_one({"category": "earnings"}))
    assert await db.notifications.count_documents(this_sale) == 1


@pytest.mark.gen_test(timeout=60)
async def test_funds_are_announced_only_once_they_are_in_the_available_balance(
        api, tokens, services):
    db = services.db
    bought = await api("POST", "/api/checkout", token=await tokens(BUYER), json={
        "model_ids": [ROBOT], "payment_details": {"payment_method_id": "pm_card_visa"}})
    assert bought.status in (200, 201), bought.json
    line = await db.ledger_entries.find_one({"kind": "sale"})
    # a release cut short: the line is marked available, its balance move not yet made
    await db.ledger_entries.update_one({"_id": line["_id"]}, {"$set": {
        "status": "available", "released_at": utcnow(), "release_applied": False,
        "funds_notified": False}})
    assert await earnings.claim_funds_notices(db) == []
    balance = await db.seller_balances.find_one({"_id": line["seller_id"]})
    assert balance["available_cents"] == 0 and balance["pending_cents"] == line["amount_cents"]

    later = utcnow() + earnings.RECOVER_AFTER + timedelta(seconds=1)
    assert await earnings.release_matured(db, line["seller_id"], now=later) == 0
    balance = await db.seller_balances.find_one({"_id": line["seller_id"]})
    assert balance["available_cents"] == line["amount_cents"] and balance["pending_cents"] == 0
    await until(lambda: db.notifications.find_one({
        "user_id": line["seller_id"], "type": "funds_available",
        "data.amount": line["amount_cents"] / 100}))


@pytest.mark.gen_test(timeout=60)
async def test_unattached_upload_is_deleted(api, tokens, services):
    token = await tokens(BUYER)
    loose = await upload(api, "/api/upload/image", token, [("file", "a.jpg", image_bytes())])
    kept = await upload(api, "/api/upload/image", token, [("file", "b.jpg", image_bytes())])
    assert loose.status == kept.status == 201, loose.json
    db = services.db
    loose_doc = await db.files.find_one({"url": loose.json["url"]})
    kept_doc = await db.files.find_one({"url": kept.json["url"]})
    await db.users.update_one({"email": BUYER}, {"$set": {"avatar_url": kept.json["url"]}})
    await db.files.update_many({}, {"$set": {"created_at": utcnow() - timedelta(hours=25)}})

    async def deleted():  # the record first, then the stored object
        return await db.files.find_one({"_id": loose_doc["_id"]}) is None \
            and loose_doc["key"] not in stored_objects(services)
    await until(deleted)
    assert await db.files.find_one({"_id": kept_doc["_id"]}) is not None
    assert kept_doc["key"] in stored_objects(services)


@pytest.mark.gen_test(timeout=60)
async def test_model_analysis_job_fills_the_figures_from_the_stored_file(api, tokens, services):
    import trimesh
    from bson import ObjectId
    from upload_support import MODEL_FIELDS, mesh_bytes

    mesh = trimesh.creation.icosphere(subdivisions=2)
    category = (await services.db.categories.find_one({"is_active": True}))["name"]
    reply = await upload(api, "/api/models", await tokens(CREATOR),
                         [("file", "ball.glb", mesh_bytes("glb", mesh))],
                         dict(MODEL_FIELDS, category=category))
    assert reply.status == 201, reply.json
    model_id = ObjectId(reply.json["id"])
    await services.db.models.update_one({"_id": model_id}, {"$set": {
        "poly_count": None, "vertex_count": None, "analyzed": False}})
    assert await services.jobs.enqueue("analyse_model", model_id=str(model_id))

    async def analysed():
        doc = await services.db.models.find_one({"_id": model_id})
        return doc if doc["analyzed"] else None
    doc = await until(analysed)
    assert doc["poly_count"] == len(mesh.faces) and doc["vertex_count"] == len(mesh.vertices)


@pytest.mark.gen_test(timeout=60)
async def test_stranded_payout_amount_is_given_back(services):
    from bson import ObjectId

    from documents import payouts

    db = services.db
    seller = (await db.users.find_one({"email": CREATOR}))["_id"]
    crashed = ObjectId.from_datetime(utcnow() - timedelta(hours=1))   # never stored
    finished = ObjectId.from_datetime(utcnow() - timedelta(hours=2))  # stored, no ledger line
    await db.seller_balances.update_one({"_id": seller}, {"$set": {
        "available_cents": 1000, "pending_cents": 0, "paid_out_cents": 0,
        "ops": [payouts.take_op(crashed, 2500), payouts.take_op(finished, 1500)]}},
        upsert=True)
    await db.payouts.insert_one({"_id": finished, "seller_id": seller, "amount_cents": 1500,
                                 "status": "requested", "created_at": utcnow()})

    async def resolved():
        balance = await db.seller_balances.find_one({"_id": seller})
        return balance if balance["ops"] == [] else None
    balance = await until(resolved)
    assert balance["available_cents"] == 1000 + 2500
    line = await db.ledger_entries.find_one({"payout_id": finished})
    assert line["kind"] == "payout" and line["amount_cents"] == -1500


@pytest.mark.gen_test(timeout=60)
async def test_email_whose_job_was_lost_is_queued_again(services):
    """An email recorded while the queue was unreachable (no job): the reclaim job queues it."""
    from bson import ObjectId

    lost = {"_id": ObjectId(), "to": "later@example.com", "subject": "Lost", "text": "Found",
            "html": None, "category": "transactional", "status": "queued", "attempts": 0,
            "redacted": False, "redact_when_done": False,
            "created_at": utcnow() - timedelta(hours=1), "sent_at": None}
    fresh = {**lost, "_id": ObjectId(), "created_at": utcnow()}  # its job may still come
    await services.db.emails.insert_many([lost, fresh])

    async def sent():
        return (await services.db.emails.find_one({"_id": lost["_id"]}))["status"] == "sent"
    await until(sent)
    assert (await services.db.emails.find_one({"_id": fresh["_id"]}))["status"] == "queued"
