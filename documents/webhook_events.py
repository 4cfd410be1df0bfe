"""Payment webhook events (seed 001 §16, docs/architecture.md §5).

`webhook_events`::

    {_id: the provider's event id, type, status: "processing" | "processed", outcome,
     received_at, processed_at}

Rules:
- An event is handled once: its id is stored before handling, and an event already
  processed is skipped; one left "processing" by a crash is handled again.
- The PaymentIntent is looked up again at the provider: its current state wins over the
  event's, so old or replayed events cannot undo a later state. The order then settles as in
  `documents.checkout`.
"""
from __future__ import annotations

import logging

from pymongo.errors import DuplicateKeyError

from documents import refunds
from documents.checkout import settle
from documents.common import object_id, utcnow
from documents.errors import NotFound, PaymentFailed
from documents.orders import OPEN, ORDERS

log = logging.getLogger("hwc3d.webhooks")

WEBHOOK_EVENTS = "webhook_events"


async def record_event(db, event: dict) -> bool:
    """Store the event id (`webhook_events`); False when it was processed already."""
    try:
        await db[WEBHOOK_EVENTS].insert_one({"_id": event["id"], "type": event["type"],
                                             "status": "processing", "received_at": utcnow()})
        return True
    except DuplicateKeyError:
        done = await db[WEBHOOK_EVENTS].find_one({"_id": event["id"], "status": "processed"})
        return done is None


async def finish_event(db, event: dict, outcome: str) -> None:
    """Mark the event processed with what it did."""
    await db[WEBHOOK_EVENTS].update_one({"_id": event["id"]}, {"$set": {
        "status": "processed", "outcome": outcome, "processed_at": utcnow()}})


async def order_for_intent(db, intent) -> dict | None:
    """The order a PaymentIntent pays: by its recorded id, else its `metadata.order_id`."""
    order = await db[ORDERS].find_one({"payment_intent_id": intent.id})
    if order is None and object_id(intent.metadata.get("order_id")):
        order = await db[ORDERS].find_one({"_id": object_id(intent.metadata["order_id"])})
        if order is not None and order.get("payment_intent_id") not in (None, intent.id):
            return None
    return order


async def on_payment_event(db, hub, mailer, provider, payment_intent_id: str) -> str:
    """Handle payment_intent.succeeded / payment_failed: the intent is looked up again at the
    provider (its current state wins over the event's, so old or replayed events cannot undo
    a later state) and settled. Returns the outcome ("fulfilled", "failed", "ignored", ...)."""
    try:
        intent = await provider.retrieve_payment_intent(payment_intent_id)
    except NotFound:
        return "unknown_payment"
    order = await order_for_intent(db, intent)
    if order is None:
        return "unknown_order"
    if order["status"] not in OPEN and intent.status == "succeeded" and order["status"] != "paid":
        log.error("payment %s succeeded for %s order %s: refund it by hand", intent.id,
                  order["status"], order["_id"])
        return "orphan_payment"
    if order["status"] not in OPEN and order["status"] != "paid":
        return "ignored"
    try:
        order = await settle(db, hub, mailer, order, intent)
    except PaymentFailed:
        return "failed"
    return order["status"]


PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed",
                  "payment_intent.requires_action", "payment_intent.canceled")


async def handle_stripe_event(db, hub, mailer, provider, event: dict) -> str:
    """Process one verified webhook event, deduplicated by its id (`webhook_events`): the
    PaymentIntent events settle the order through the same transition as checkout, and
    `charge.refunded` refunds a charge refunded at the provider. Unknown types are ignored.
    Returns the outcome ("duplicate", "ignored", "paid", "failed", ...)."""
    if not await record_event(db, event):
        return "duplicate"
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        outcome = "malformed"
    elif event["type"] in PAYMENT_EVENTS and isinstance(obj.get("id"), str):
        outcome = await on_payment_event(db, hub, mailer, provider, obj["id"])
    elif event["type"] == "charge.refunded":
        outcome = await refunds.on_charge_refunded(db, obj)
    else:
        outcome = "ignored"
    await finish_event(db, event, outcome)
    return outcome
