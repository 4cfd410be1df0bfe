"""Fulfilment of a paid order: the one transition to paid and its side effects (seed 001 §16,
docs/architecture.md §5). Order and transaction shapes are in `documents.orders`.

Rules:
- `intent_matches` is the payment check: the PaymentIntent succeeded for exactly the order's
  amount and currency (a free order, total 0, needs none).
- `fulfil_order` is the ONE transition ``pending | requires_action → paid`` (conditional
  `find_one_and_update`), reached by the synchronous path and the webhook alike. Its side
  effects (transactions, purchases, ledger, counters, cart, email, notifications) are each
  idempotent (unique keys, upserts, `money.apply_counter`, claimed flags), so a retry after a
  crash resumes them and the email and notifications go out once.
- A paid order turns its coupon hold into a use (`_use_coupon`, counted once).
"""
from __future__ import annotations

import logging

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import cart, catalog, charges, coupons, email_notices, money, notifications, users
from documents.common import from_cents, utcnow
from documents.errors import PaymentFailed
from documents.orders import (
    DOWNLOAD_LIMIT,
    OPEN,
    ORDERS,
    get_order,
    release_claims,
)
from documents.purchases import PURCHASES, TRANSACTIONS
from realtime import channels

log = logging.getLogger("hwc3d.fulfilment")


def intent_matches(order: dict, intent) -> bool:
    """True when `intent` pays exactly this order (`charges.payment_matches`: succeeded, the
    order's total and currency, tagged with its id) and is the intent the order started;
    an order of total 0 needs no intent (None)."""
    if intent is None:
        return order["total_cents"] == 0
    return (charges.payment_matches(intent, order["total_cents"], currency=order["currency"],
                                    metadata={"order_id": str(order["_id"])})
            and order.get("payment_intent_id") in (None, intent.id))


async def fulfil_order(db, hub, mailer, order_id, payment_intent) -> dict:
    """Mark the order paid and deliver it, exactly once whichever path arrives first.

    `payment_intent` is the provider's `PaymentIntentResult` (None for a free order, total 0).
    The conditional ``pending | requires_action → paid`` runs only when the intent succeeded
    for the order's amount and currency; then (and on every later call for a paid order that
    was not completely delivered) the idempotent side effects run. Returns the order.
    Raises PaymentFailed PAYMENT_MISMATCH when the intent does not match the order.
    """
    order = await get_order(db, order_id)
    if order["status"] in OPEN:
        if not intent_matches(order, payment_intent):
            log.error("payment %s does not match order %s", getattr(payment_intent, "id", None),
                      order["_id"])
            raise PaymentFailed("The payment does not match the order", "PAYMENT_MISMATCH")
        changes = {"status": "paid", "paid_at": utcnow()}
        if payment_intent is not None:
            changes["payment_intent_id"] = payment_intent.id
        won = await db[ORDERS].find_one_and_update(
            {"_id": order["_id"], "status": {"$in": list(OPEN)}}, {"$set": changes},
            return_document=ReturnDocument.AFTER)
        order = won or await get_order(db, order["_id"])
    if order["status"] == "paid" and order.get("fulfilled_at") is None:
        await _deliver(db, hub, mailer, order)
        order = await get_order(db, order["_id"])
    return order


async def _deliver(db, hub, mailer, order: dict) -> None:
    """The side effects of a paid order, each idempotent (module docstring)."""
    buyer = await users.get(db, order["buyer_id"])
    for line in order["lines"]:
        transaction = await _upsert_transaction(db, order, line)
        await _upsert_purchase(db, order, line)
        await money.record_sale(db, transaction,
                                money.hold_window(getattr(hub, "settings", None)))
        await money.apply_counter(db, TRANSACTIONS, {"_id": transaction["_id"]}, "counted",
                                  catalog.COLLECTION, line["model_id"],
                                  f"sale:{line['transaction_id']}", {"sales_count": 1})
    if order.get("coupon_code"):
        await _use_coupon(db, order)
    await cart.clear_models(db, order["buyer_id"], [line["model_id"] for line in order["lines"]])
    await release_claims(db, order["_id"])
    await _email_buyer(db, mailer, order, buyer)
    await _notify_sellers(db, hub, mailer, order, buyer)
    await db[ORDERS].update_one({"_id": order["_id"]}, {"$set": {"fulfilled_at": utcnow()}})


async def _use_coupon(db, order: dict) -> None:
    """Count the paid order's coupon use once (`money.apply_counter`, flag `counted`): its
    hold becomes a use (``used_count +1, reserved_count -1``). An order stored before holds
    existed takes a use from `remaining` instead."""
    coupon_id = order.get("coupon_id")
    if coupon_id is None:
        coupon = await coupons.get_by_code(db, order["coupon_code"])
        if coupon is None:
            return
        coupon_id = (await coupons.with_counts(db, coupon))["_id"]
    held = order.get("coupon_hold") in ("held", "used")
    await money.apply_counter(db, ORDERS, {"_id": order["_id"]}, "counted", coupons.COUPONS,
                              coupon_id, f"order:{order['_id']}",
                              coupons.USE_HELD if held else coupons.USE_UNHELD)
    await db[ORDERS].update_one({"_id": order["_id"], "coupon_hold": "held"},
                                {"$set": {"coupon_hold": "used"}})


async def _upsert_transaction(db, order: dict, line: dict) -> dict:
    key = {"transaction_id": line["transaction_id"]}
    doc = {**key, "order_id": order["_id"], "buyer_id": order["buyer_id"],
           "seller_id": line["seller_id"], "model_id": line["model_id"],
           "amount_cents": line["amount_cents"], "platform_fee_cents": line["fee_cents"],
           "seller_amount_cents": line["seller_amount_cents"],
           "discount_cents": line["discount_cents"], "coupon_code": order.get("coupon_code"),
           "payment_method": order["payment_method"], "payment_status": "completed",
           "created_at": order["created_at"], "completed_at": order["paid_at"] or utcnow(),
           "refunded_at": None, "refund_id": None, "counted": False}
    try:
        await db[TRANSACTIONS].update_one(key, {"$setOnInsert": doc}, upsert=True)
    except DuplicateKeyError:
        pass  # inserted by a concurrent delivery
    return await db[TRANSACTIONS].find_one(key)


async def _upsert_purchase(db, order: dict, line: dict) -> None:
    """The buyer's purchase of the line's model (unique per user and model); a purchase
    revoked by an earlier refund is given back by this newer order."""
    key = {"user_id": order["buyer_id"], "model_id": line["model_id"]}
    fresh = {"order_id": order["_id"], "transaction_id": line["transaction_id"],
             "download_count": 0, "download_limit": DOWNLOAD_LIMIT, "status": "active",
             "created_at": utcnow()}
    await db[PURCHASES].update_one({**key, "status": "revoked", "order_id": {"$ne": order["_id"]}},
                                   {"$set": fresh})
    try:
        await db[PURCHASES].update_one(key, {"$setOnInsert": {**key, **fresh}}, upsert=True)
    except DuplicateKeyError:
        pass  # inserted by a concurrent delivery


async def _email_buyer(db, mailer, order: dict, buyer: dict | None) -> None:
    claimed = await db[ORDERS].update_one({"_id": order["_id"], "emailed_at": None},
                                          {"$set": {"emailed_at": utcnow()}})
    if claimed.modified_count == 1:
        await email_notices.order_confirmation(mailer, order, buyer)


async def _notify_sellers(db, hub, mailer, order: dict, buyer: dict | None) -> None:
    name = (buyer or {}).get("username", "Someone")
    for seller_id in dict.fromkeys(line["seller_id"] for line in order["lines"]):
        claimed = await db[ORDERS].update_one(
            {"_id": order["_id"], "notified_sellers": {"$ne": seller_id}},
            {"$push": {"notified_sellers": seller_id}})
        if claimed.modified_count != 1:
            continue
        sold = [line for line in order["lines"] if line["seller_id"] == seller_id]
        titles = ", ".join(line["title"] for line in sold)
        await email_notices.sale_made(db, mailer, seller_id, sold, buyer)
        await notifications.notify(
            db, hub, seller_id, channels.MODEL_PURCHASED, "New sale", f"{name} bought {titles}",
            data={"order_id": str(order["_id"]),
                  "models": [{"model_id": str(line["model_id"]),
                              "transaction_id": line["transaction_id"],
                              "amount": from_cents(line["amount_cents"]),
                              "seller_amount": from_cents(line["seller_amount_cents"])}
                             for line in sold]},
            action_url="/dashboard/sales")
