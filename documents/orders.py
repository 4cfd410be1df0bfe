"""Orders, checkout and fulfilment (seed 001 §16, DESIGN §7; issue 5 items 2–3).

`orders` (brief "Money")::

    {_id, number "ORD-YYYY-NNNNNN", buyer_id, status: "pending" | "requires_action" | "paid" |
     "failed" | "refunded" | "canceled", lines: [{model_id, seller_id, title, transaction_id,
     price_cents, amount_cents, discount_cents, fee_cents, seller_amount_cents}],
     subtotal_cents, discount_cents, total_cents, fee_cents, currency "usd", coupon_code,
     coupon_id, coupon_hold: None | "held" | "used" | "released", payment_method, provider,
     payment_intent_id, idempotency_key, fingerprint, failure_code, failure_message,
     created_at, paid_at, fulfilled_at, emailed_at, notified_sellers: [seller_id],
     counted: bool (the coupon use), coupon_released_at}

`transactions` (seed 000 §4 `Transaction`, one per line of a paid order)::

    {_id, transaction_id "TXN-YYYY-NNNNNN" (unique), order_id, buyer_id, seller_id, model_id,
     amount_cents, platform_fee_cents, seller_amount_cents, discount_cents, coupon_code,
     payment_method, payment_status: "completed" | "refunded", created_at, completed_at,
     refunded_at, refund_id, counted: bool}

Rules:
- One order per attempt. A checkout with an `Idempotency-Key` already used by the buyer
  returns that order (same body) or 409 IDEMPOTENCY_KEY_REUSED (another body). While an
  order is in flight its models are claimed in `checkout_claims` ``{_id: "<buyer>:<model>",
  order_id}``, so a concurrent checkout of the same models is refused (409
  CHECKOUT_IN_PROGRESS) instead of charging twice.
- An order with a coupon holds one of its uses from creation (`cart.reserve_use`; none left
  → 400 COUPON_USED_UP before any charge). The hold ends once: a paid order turns it into a
  use (`_use_coupon`), a failed or canceled one gives it back (`release_coupon`, after the
  conditional ``coupon_hold: held → released`` on the order, so a retry or a replayed
  webhook cannot give it back twice). So `used_count` never passes `max_uses`, even when an
  order waiting for 3-D Secure is paid after other checkouts.
- The PaymentIntent's idempotency key is ``order-<order_id>``: re-driving a pending order
  never charges twice.
- `fulfil_order` is the ONE transition ``pending | requires_action → paid`` (conditional
  `find_one_and_update`), reached by the synchronous path and the webhook alike. Its side
  effects (transactions, purchases, ledger, counters, cart, email, notifications) are each
  idempotent (unique keys, upserts, `money.apply_counter`, claimed flags), so a retry after a
  crash resumes them and the email and notifications go out once.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import cart, catalog, money, notifications, users
from documents.common import from_cents, object_id, utcnow
from documents.errors import BadRequest, Conflict, Invalid, NotFound, PaymentFailed

ORDERS = "orders"
TRANSACTIONS = "transactions"
PURCHASES = "purchases"
CLAIMS = "checkout_claims"
COUNTERS = "counters"
CURRENCY = "usd"
MAX_LINES = 50
OPEN = ("pending", "requires_action")
DOWNLOAD_LIMIT = 10
CLAIM_TTL = timedelta(minutes=30)

INDEXES = {
    ORDERS: [
        IndexModel([("buyer_id", ASCENDING), ("idempotency_key", ASCENDING)], unique=True),
        IndexModel([("number", ASCENDING)], unique=True),
        IndexModel([("payment_intent_id", ASCENDING)]),
        IndexModel([("buyer_id", ASCENDING), ("created_at", DESCENDING)]),
    ],
    TRANSACTIONS: [
        IndexModel([("transaction_id", ASCENDING)], unique=True),
        IndexModel([("order_id", ASCENDING)]),
        IndexModel([("buyer_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("seller_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("model_id", ASCENDING)]),
    ],
}

log = logging.getLogger("hwc3d.orders")


# --------------------------------------------------------------------------- numbering

async def _next_numbers(db, prefix: str, count: int) -> list[str]:
    """`count` fresh numbers ``<prefix>-YYYY-NNNNNN`` from a per-year counter (gaps allowed)."""
    year = utcnow().year
    doc = await db[COUNTERS].find_one_and_update(
        {"_id": f"{prefix}:{year}"}, {"$inc": {"seq": count}}, upsert=True,
        return_document=ReturnDocument.AFTER)
    last = int(doc["seq"])
    return [f"{prefix}-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


# --------------------------------------------------------------------------- creating orders

def fingerprint(body: dict) -> str:
    """A hash of a checkout body (canonical JSON), to tell a replay from a reused key."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def find_by_key(db, buyer_id, idempotency_key: str, body_fingerprint: str) -> dict | None:
    """The buyer's order made with `idempotency_key`, or None. Raises Conflict
    IDEMPOTENCY_KEY_REUSED when it was made from another body."""
    order = await db[ORDERS].find_one({"buyer_id": buyer_id, "idempotency_key": idempotency_key})
    if order is not None and order.get("fingerprint") != body_fingerprint:
        raise Conflict("This Idempotency-Key was used with another request body",
                       "IDEMPOTENCY_KEY_REUSED")
    return order


async def _models_for(db, buyer: dict, model_ids: list[str]) -> list[dict]:
    """The buyable models of a checkout in request order (duplicates dropped); raises as
    `cart.get_buyable` (free models allowed), Invalid for too many."""
    unique = list(dict.fromkeys(model_ids))
    if len(unique) > MAX_LINES:
        raise Invalid({"model_ids": [f"At most {MAX_LINES} models per order"]})
    return [await cart.get_buyable(db, buyer, mid, allow_free=True) for mid in unique]


def _lines(models: list[dict], percent, numbers: list[str]) -> list[dict]:
    return [{"model_id": m["_id"], "seller_id": m["creator_id"], "title": m.get("title", ""),
             "transaction_id": number, **money.price_line(m.get("price_cents") or 0, percent)}
            for m, number in zip(models, numbers, strict=True)]


async def _claim(db, order_id, buyer_id, model_ids: list) -> None:
    """Claim the models for `order_id`; raises Conflict CHECKOUT_IN_PROGRESS when another open
    order of the buyer holds one (stale claims of closed orders are taken over)."""
    taken: list[str] = []
    try:
        for model_id in model_ids:
            key = f"{buyer_id}:{model_id}"
            try:
                await db[CLAIMS].insert_one({"_id": key, "order_id": order_id,
                                             "created_at": utcnow()})
            except DuplicateKeyError:
                if not await _take_stale_claim(db, key, order_id):
                    raise
            taken.append(key)
    except DuplicateKeyError:
        await db[CLAIMS].delete_many({"_id": {"$in": taken}, "order_id": order_id})
        raise Conflict("A checkout of these models is already in progress",
                       "CHECKOUT_IN_PROGRESS") from None


async def _take_stale_claim(db, key: str, order_id) -> bool:
    """Take over a claim whose order is closed, or open but abandoned for CLAIM_TTL (that
    order is canceled first; should its payment still succeed, it is logged as orphaned)."""
    claim = await db[CLAIMS].find_one({"_id": key})
    if claim is None:
        return False
    holder = await db[ORDERS].find_one({"_id": claim["order_id"]}, {"status": 1, "created_at": 1})
    if holder is not None and holder["status"] in OPEN:
        if holder["created_at"] > utcnow() - CLAIM_TTL:
            return False
        await cancel_order(db, holder["_id"])
    result = await db[CLAIMS].update_one({"_id": key, "order_id": claim["order_id"]},
                                         {"$set": {"order_id": order_id, "created_at": utcnow()}})
    return result.modified_count == 1


async def cancel_order(db, order_id) -> bool:
    """``pending | requires_action → canceled`` (an abandoned order replaced by a new
    attempt) and its coupon hold given back. True when this call canceled it."""
    result = await db[ORDERS].update_one({"_id": order_id, "status": {"$in": list(OPEN)}},
                                         {"$set": {"status": "canceled", "canceled_at": utcnow()}})
    await release_coupon(db, order_id)
    return result.modified_count == 1


async def _hold_coupon(db, coupon: dict, order_id) -> None:
    """Hold a use of `coupon` for `order_id` (`cart.reserve_use`). When none is left but
    some are held by orders abandoned for CLAIM_TTL (3-D Secure never finished), those are
    canceled (their claims dropped, holds given back) and the hold is tried once more.
    Raises BadRequest COUPON_USED_UP (or the coupon's other errors)."""
    try:
        await cart.reserve_use(db, coupon, order_id)
    except BadRequest as exc:
        if exc.error_code != "COUPON_USED_UP" or not await _cancel_stale_holds(db, coupon["_id"]):
            raise
        await cart.reserve_use(db, coupon, order_id)


async def _cancel_stale_holds(db, coupon_id) -> int:
    """Cancel the open orders holding a use of `coupon_id` since before CLAIM_TTL (a payment
    that still succeeds later is logged as orphaned); returns how many were found (a racing
    call may have canceled some: their uses are back either way)."""
    stale = await db[ORDERS].find(
        {"coupon_id": coupon_id, "coupon_hold": "held", "status": {"$in": list(OPEN)},
         "created_at": {"$lte": utcnow() - CLAIM_TTL}}, {"_id": 1}).to_list(length=MAX_LINES)
    for order in stale:
        if await cancel_order(db, order["_id"]):
            await release_claims(db, order["_id"])
    return len(stale)


async def release_claims(db, order_id) -> None:
    """Drop the claims of an order that is closed (paid, failed, canceled)."""
    await db[CLAIMS].delete_many({"order_id": order_id})


async def create_order(db, buyer: dict, *, model_ids: list[str], coupon_code: str | None,
                       payment_method: str, payment_token: str | None, provider: str,
                       idempotency_key: str, body_fingerprint: str) -> dict:
    """Insert a pending order for `buyer` (seed 001 §16); returns it.

    Validates every model (`cart.get_buyable`, free allowed) and the coupon
    (`cart.get_valid_coupon`), prices each line in cents (coupon per line, 7.5 % fee), numbers
    the order and its future transactions, claims the models and holds a use of the coupon
    (`cart.reserve_use`). Raises the cart's errors (coupon: 404 INVALID_COUPON, 400
    COUPON_INACTIVE / COUPON_EXPIRED / COUPON_USED_UP), Invalid when a paid order has no
    `payment_token`, Conflict CHECKOUT_IN_PROGRESS, Conflict IDEMPOTENCY_KEY_REUSED; nothing is
    kept then (claims and hold given back). An order replayed by its key keeps its own hold.
    """
    models = await _models_for(db, buyer, model_ids)
    coupon = await cart.get_valid_coupon(db, coupon_code, uses=False) if coupon_code else None
    percent = coupon["discount_percent"] if coupon else 0
    if not payment_token and any(money.price_line(m.get("price_cents") or 0, percent)
                                 ["amount_cents"] for m in models):
        raise Invalid({"payment_details.card_token": ["A card token or payment method is required"]})
    numbers = await _next_numbers(db, "TXN", len(models))
    lines = _lines(models, percent, numbers)
    order = {"number": (await _next_numbers(db, "ORD", 1))[0], "buyer_id": buyer["_id"],
             "status": "pending", "lines": lines, **money.totals(lines), "currency": CURRENCY,
             "coupon_code": coupon["code"] if coupon else None,
             "coupon_id": coupon["_id"] if coupon else None,
             "coupon_hold": "held" if coupon else None, "payment_method": payment_method,
             "provider": provider, "payment_intent_id": None, "idempotency_key": idempotency_key,
             "fingerprint": body_fingerprint, "failure_code": None, "failure_message": None,
             "created_at": utcnow(), "paid_at": None, "fulfilled_at": None, "emailed_at": None,
             "notified_sellers": [], "counted": False}
    order["_id"] = ObjectId()
    await _claim(db, order["_id"], buyer["_id"], [line["model_id"] for line in lines])
    if coupon:
        try:
            await _hold_coupon(db, coupon, order["_id"])
        except Exception:
            await release_claims(db, order["_id"])
            raise
    try:
        await db[ORDERS].insert_one(order)
    except DuplicateKeyError:
        await release_claims(db, order["_id"])
        if coupon:
            await cart.drop_hold(db, coupon["_id"], order["_id"])
        existing = await find_by_key(db, buyer["_id"], idempotency_key, body_fingerprint)
        if existing is None:
            raise
        return existing
    if coupon:
        await cart.confirm_hold(db, coupon["_id"], order["_id"])
    return order


async def get_order(db, order_id) -> dict:
    """The order `order_id`; raises NotFound ORDER_NOT_FOUND (also for bad ids)."""
    oid = object_id(order_id)
    order = await db[ORDERS].find_one({"_id": oid}) if oid else None
    if order is None:
        raise NotFound("Order not found", "ORDER_NOT_FOUND")
    return order


async def get_buyer_order(db, buyer: dict, *, order_id=None, payment_intent_id=None) -> dict:
    """The buyer's order by id or PaymentIntent id; NotFound for another buyer's."""
    if order_id is not None:
        order = await get_order(db, order_id)
    else:
        order = await db[ORDERS].find_one({"payment_intent_id": str(payment_intent_id)})
    if order is None or order["buyer_id"] != buyer["_id"]:
        raise NotFound("Order not found", "ORDER_NOT_FOUND")
    return order


# --------------------------------------------------------------------------- payment outcome

async def attach_intent(db, order: dict, intent) -> dict:
    """Record the PaymentIntent id on the order (once); returns the order."""
    if order.get("payment_intent_id") == intent.id:
        return order
    updated = await db[ORDERS].find_one_and_update(
        {"_id": order["_id"], "payment_intent_id": None},
        {"$set": {"payment_intent_id": intent.id}}, return_document=ReturnDocument.AFTER)
    return updated or await get_order(db, order["_id"])


async def mark_requires_action(db, order_id) -> dict:
    """``pending → requires_action`` (3-D Secure); returns the order as it is now."""
    updated = await db[ORDERS].find_one_and_update(
        {"_id": order_id, "status": "pending"}, {"$set": {"status": "requires_action"}},
        return_document=ReturnDocument.AFTER)
    return updated or await get_order(db, order_id)


async def fail_order(db, order_id, code: str | None, message: str | None) -> dict:
    """``pending | requires_action → failed`` (declined card): nothing bought, the cart kept,
    the claims and the coupon hold released. Returns the order as it is now (a paid order
    stays paid)."""
    updated = await db[ORDERS].find_one_and_update(
        {"_id": order_id, "status": {"$in": list(OPEN)}},
        {"$set": {"status": "failed", "failure_code": code or "card_declined",
                  "failure_message": message or "Your card was declined."}},
        return_document=ReturnDocument.AFTER)
    if updated is not None:
        await release_claims(db, order_id)
    await release_coupon(db, order_id)  # also resumes a release cut short
    return updated or await get_order(db, order_id)


async def release_coupon(db, order_id) -> bool:
    """Give back the coupon use held by a failed or canceled order, exactly once: the
    conditional ``coupon_hold: held → released`` on the order decides who gives it back (a
    retry, a replayed webhook or a racing request finds it released). True when this call
    gave it back; a paid or open order, or one without a hold, is left alone."""
    won = await db[ORDERS].find_one_and_update(
        {"_id": order_id, "coupon_hold": "held", "status": {"$in": ["failed", "canceled"]}},
        {"$set": {"coupon_hold": "released", "coupon_released_at": utcnow()}})
    if won is None:
        return False
    await cart.release_use(db, won["coupon_id"])
    return True


def intent_matches(order: dict, intent) -> bool:
    """True when `intent` succeeded for exactly this order's amount and currency."""
    if intent is None:
        return order["total_cents"] == 0
    return (intent.status == "succeeded" and intent.amount_cents == order["total_cents"]
            and intent.currency.lower() == order["currency"]
            and order.get("payment_intent_id") in (None, intent.id)
            and intent.metadata.get("order_id", str(order["_id"])) == str(order["_id"]))


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


# --------------------------------------------------------------------------- delivery

async def _deliver(db, hub, mailer, order: dict) -> None:
    """The side effects of a paid order, each idempotent (module docstring)."""
    buyer = await users.get(db, order["buyer_id"])
    for line in order["lines"]:
        transaction = await _upsert_transaction(db, order, line)
        await _upsert_purchase(db, order, line)
        await money.record_sale(db, transaction)
        await money.apply_counter(db, TRANSACTIONS, {"_id": transaction["_id"]}, "counted",
                                  catalog.COLLECTION, line["model_id"],
                                  f"sale:{line['transaction_id']}", {"sales_count": 1})
    if order.get("coupon_code"):
        await _use_coupon(db, order)
    await cart.clear_models(db, order["buyer_id"], [line["model_id"] for line in order["lines"]])
    await release_claims(db, order["_id"])
    await _email_buyer(db, mailer, order, buyer)
    await _notify_sellers(db, hub, order, buyer)
    await db[ORDERS].update_one({"_id": order["_id"]}, {"$set": {"fulfilled_at": utcnow()}})


async def _use_coupon(db, order: dict) -> None:
    """Count the paid order's coupon use once (`money.apply_counter`, flag `counted`): its
    hold becomes a use (``used_count +1, reserved_count -1``). An order stored before holds
    existed takes a use from `remaining` instead."""
    coupon_id = order.get("coupon_id")
    if coupon_id is None:
        coupon = await db[cart.COUPONS].find_one({"code": order["coupon_code"]})
        if coupon is None:
            return
        coupon_id = (await cart.with_counts(db, coupon))["_id"]
    held = order.get("coupon_hold") in ("held", "used")
    await money.apply_counter(db, ORDERS, {"_id": order["_id"]}, "counted", cart.COUPONS,
                              coupon_id, f"order:{order['_id']}",
                              cart.USE_HELD if held else cart.USE_UNHELD)
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
    if claimed.modified_count != 1 or not buyer or not buyer.get("email") or mailer is None:
        return
    lines = "\n".join(f"- {line['title']}: ${from_cents(line['amount_cents']):.2f} "
                      f"({line['transaction_id']})" for line in order["lines"])
    await mailer.send(
        buyer["email"], f"Your HWC3D order {order['number']}",
        f"Thank you for your purchase.\n\nOrder {order['number']}\n{lines}\n\n"
        f"Total: ${from_cents(order['total_cents']):.2f}\n\n"
        "Your models are in your library: /dashboard/purchases", category="purchase")


async def _notify_sellers(db, hub, order: dict, buyer: dict | None) -> None:
    name = (buyer or {}).get("username", "Someone")
    for seller_id in dict.fromkeys(line["seller_id"] for line in order["lines"]):
        claimed = await db[ORDERS].update_one(
            {"_id": order["_id"], "notified_sellers": {"$ne": seller_id}},
            {"$push": {"notified_sellers": seller_id}})
        if claimed.modified_count != 1:
            continue
        sold = [line for line in order["lines"] if line["seller_id"] == seller_id]
        titles = ", ".join(line["title"] for line in sold)
        await notifications.notify(
            db, hub, seller_id, "model_purchased", "New sale", f"{name} bought {titles}",
            data={"order_id": str(order["_id"]),
                  "models": [{"model_id": str(line["model_id"]),
                              "transaction_id": line["transaction_id"],
                              "amount": from_cents(line["amount_cents"]),
                              "seller_amount": from_cents(line["seller_amount_cents"])}
                             for line in sold]},
            action_url="/dashboard/sales")


# --------------------------------------------------------------------------- driving payments

def payment_token(payment_details: dict | None) -> str | None:
    """The card token or PaymentMethod id of a checkout's `payment_details`."""
    details = payment_details or {}
    return details.get("payment_method_id") or details.get("card_token")


async def settle(db, hub, mailer, order: dict, intent) -> dict:
    """Apply a PaymentIntent's state to the order: succeeded → `fulfil_order`;
    requires_action/requires_confirmation → requires_action; requires_payment_method or
    canceled → failed (raises PaymentFailed 402); processing → unchanged. Returns the order."""
    order = await attach_intent(db, order, intent)
    if intent.status == "succeeded":
        return await fulfil_order(db, hub, mailer, order["_id"], intent)
    if intent.status in ("requires_action", "requires_confirmation"):
        return await mark_requires_action(db, order["_id"])
    if intent.status in ("requires_payment_method", "canceled"):
        order = await fail_order(db, order["_id"], intent.failure_code, intent.failure_message)
    return await raise_if_failed(order)


async def raise_if_failed(order: dict) -> dict:
    """Raise PaymentFailed (402) for a failed order, else return it."""
    if order["status"] == "failed":
        raise PaymentFailed(order.get("failure_message") or "Payment failed",
                            order_id=str(order["_id"]), decline_code=order.get("failure_code"))
    if order["status"] in ("canceled", "refunded"):
        raise Conflict(f"This order is {order['status']}", "ORDER_CLOSED")
    return order


async def drive_payment(db, hub, mailer, provider, order: dict, payment_details: dict | None
                        ) -> tuple[dict, Any]:
    """Take the order as far as it can go now; returns (order, intent or None).

    A free order (total 0) is fulfilled without a payment. A pending order gets its
    PaymentIntent (idempotency key ``order-<id>``, so a replay never charges twice); an order
    waiting for 3-D Secure is looked up again. Raises PaymentFailed (402) when declined,
    Invalid when a paid order has no card token.
    """
    if order["status"] == "paid":
        return await fulfil_order(db, hub, mailer, order["_id"], None), None
    if order["status"] not in OPEN:
        return await raise_if_failed(order), None
    if order["total_cents"] == 0:
        return await fulfil_order(db, hub, mailer, order["_id"], None), None
    if order.get("payment_intent_id"):
        intent = await provider.retrieve_payment_intent(order["payment_intent_id"])
    else:
        token = payment_token(payment_details)
        if not token:
            raise Invalid({"payment_details.card_token": ["A card token or payment method is required"]})
        try:
            intent = await provider.create_payment_intent(
                order["total_cents"], order["currency"], idempotency_key=f"order-{order['_id']}",
                metadata={"order_id": str(order["_id"]), "order_number": order["number"],
                          "buyer_id": str(order["buyer_id"])},
                payment_method_token=token)
        except PaymentFailed as exc:  # refused before any charge (unknown card token)
            await fail_order(db, order["_id"], exc.error_code.lower(), exc.detail)
            raise
    return await settle(db, hub, mailer, order, intent), intent


async def complete_action(db, hub, mailer, provider, order: dict) -> tuple[dict, Any]:
    """`POST /api/checkout/process-payment`: after 3-D Secure, look the intent up, confirm it
    when it still waits, and settle. Returns (order, intent or None); raises PaymentFailed,
    Conflict PAYMENT_NOT_STARTED when the order never reached the provider."""
    if order["status"] not in OPEN or order["total_cents"] == 0:
        return await drive_payment(db, hub, mailer, provider, order, None)
    if not order.get("payment_intent_id"):
        raise Conflict("This order has no payment yet: send the checkout again",
                       "PAYMENT_NOT_STARTED")
    intent = await provider.retrieve_payment_intent(order["payment_intent_id"])
    if intent.status in ("requires_action", "requires_confirmation"):
        intent = await provider.confirm_payment_intent(intent.id)
    return await settle(db, hub, mailer, order, intent), intent


# --------------------------------------------------------------------------- rendering

async def transactions_of(db, order_id) -> list[dict]:
    """The transactions of an order, in line order."""
    return await db[TRANSACTIONS].find({"order_id": order_id}).sort(
        "transaction_id", ASCENDING).to_list(length=MAX_LINES)


def render_checkout(order: dict, intent, public_url: str) -> dict:
    """The checkout response of seed 001 §16::

        {transaction_id, transaction_ids, order_id, order_number, status, subtotal, discount,
         total_amount, platform_fee, currency, coupon_code,
         purchases: [{model_id, transaction_id, title, amount, download_url}]}

    plus, while 3-D Secure is pending, ``{payment_intent_id, client_secret, next_action}``.
    `download_url` is our download route; it hands out a short-lived signed URL and counts
    against the download limit.
    """
    lines = order["lines"]
    out = {"transaction_id": lines[0]["transaction_id"] if lines else None,
           "transaction_ids": [line["transaction_id"] for line in lines],
           "order_id": str(order["_id"]), "order_number": order["number"],
           "status": order["status"], "subtotal": from_cents(order["subtotal_cents"]),
           "discount": from_cents(order["discount_cents"]),
           "total_amount": from_cents(order["total_cents"]),
           "platform_fee": from_cents(order["fee_cents"]), "currency": order["currency"],
           "coupon_code": order.get("coupon_code"), "purchases": []}
    if order["status"] == "paid":
        out["purchases"] = [
            {"model_id": str(line["model_id"]), "transaction_id": line["transaction_id"],
             "title": line["title"], "amount": from_cents(line["amount_cents"]),
             "download_url": f"{public_url}/api/purchases/{line['model_id']}/download"}
            for line in lines]
    if order["status"] in OPEN and intent is not None:
        out.update(payment_intent_id=intent.id, client_secret=intent.client_secret,
                   next_action=intent.next_action)
    return out


# --------------------------------------------------------------------------- webhooks

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
