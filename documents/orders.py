"""Orders: creating them, their claims and coupon holds, their state changes (seed 001 §16,
docs/architecture.md §5). Paying is in `documents.checkout`, delivering a paid order in
`documents.fulfilment`, payment webhooks in `documents.webhook_events`.

`orders` (brief "Money")::

    {_id, number "ORD-YYYY-NNNNNN", buyer_id, status: "pending" | "requires_action" | "paid" |
     "failed" | "refunded" | "canceled", lines: [{model_id, seller_id, title, transaction_id,
     price_cents, amount_cents, discount_cents, fee_cents, seller_amount_cents}],
     subtotal_cents, discount_cents, total_cents, fee_cents, currency "usd", coupon_code,
     coupon_id, coupon_hold: None | "held" | "used" | "releasing" | "released", payment_method, provider,
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
- An order with a coupon holds one of its uses from creation (`coupons.reserve_use`; none left
  → 400 COUPON_USED_UP before any charge). The hold ends once: a paid order turns it into a
  use (`fulfilment._use_coupon`), a failed or canceled one gives it back (`release_coupon`, after the
  conditional ``coupon_hold: held → releasing`` on the order, so a retry or a replayed
  webhook cannot give it back twice). So `used_count` never passes `max_uses`, even when an
  order waiting for 3-D Secure is paid after other checkouts.
- `fulfilment.fulfil_order` is the ONE transition ``pending | requires_action → paid``.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import cart, charges, coupons, money, purchases
from documents.common import object_id, upsert_one, utcnow
from documents.errors import BadRequest, Conflict, Invalid, NotFound
from documents.purchases import TRANSACTIONS

ORDERS = "orders"
CLAIMS = "checkout_claims"
COUNTERS = "counters"
MAX_LINES = 50
OPEN = ("pending", "requires_action")
DOWNLOAD_LIMIT = 10
CLAIM_TTL = timedelta(minutes=30)
UNBORN_CLAIM_TTL = timedelta(minutes=2)  # a claim whose order was never stored (a crash)

INDEXES = {
    ORDERS: [
        IndexModel([("buyer_id", ASCENDING), ("idempotency_key", ASCENDING)], unique=True),
        IndexModel([("number", ASCENDING)], unique=True),
        IndexModel([("payment_intent_id", ASCENDING)]),
        IndexModel([("buyer_id", ASCENDING), ("created_at", DESCENDING)]),
    ],
}

log = logging.getLogger("hwc3d.orders")


# --------------------------------------------------------------------------- numbering

async def _next_numbers(db, prefix: str, count: int) -> list[str]:
    """`count` fresh numbers ``<prefix>-YYYY-NNNNNN`` from a per-year counter (gaps allowed)."""
    year = utcnow().year
    doc = await upsert_one(db[COUNTERS], {"_id": f"{prefix}:{year}"}, {"$inc": {"seq": count}},
                           reread=False)
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


def _lines(models: list[dict], coupon: dict | None, numbers: list[str]) -> list[dict]:
    prices = [m.get("price_cents") or 0 for m in models]
    shares = coupons.discounts(coupon, prices)
    return [{"model_id": m["_id"], "seller_id": m["creator_id"], "title": m.get("title", ""),
             "transaction_id": number, **money.price_line(price, discount=share)}
            for m, price, share, number in zip(models, prices, shares, numbers, strict=True)]


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
    order is canceled first; should its payment still succeed, it is logged as orphaned), or
    was never stored UNBORN_CLAIM_TTL after the claim. A claim whose order is still being
    created is never taken: a checkout racing it answers CHECKOUT_IN_PROGRESS."""
    claim = await db[CLAIMS].find_one({"_id": key})
    if claim is None:
        return False
    holder = await db[ORDERS].find_one({"_id": claim["order_id"]}, {"status": 1, "created_at": 1})
    if holder is None:      # its order is being created (the claim comes first), or never was
        if claim["created_at"] > utcnow() - UNBORN_CLAIM_TTL:
            return False
    elif holder["status"] in OPEN:
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
    """Hold a use of `coupon` for `order_id` (`coupons.reserve_use`). When none is left but
    some are held by orders abandoned for CLAIM_TTL (3-D Secure never finished), those are
    canceled (their claims dropped, holds given back) and the hold is tried once more.
    Raises BadRequest COUPON_USED_UP (or the coupon's other errors)."""
    try:
        await coupons.reserve_use(db, coupon, order_id)
    except BadRequest as exc:
        if exc.error_code != "COUPON_USED_UP" or not await _cancel_stale_holds(db, coupon["_id"]):
            raise
        await coupons.reserve_use(db, coupon, order_id)


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
    (`coupons.get_valid_coupon`), prices each line in cents (coupon per line, 7.5 % fee), numbers
    the order and its future transactions, claims the models and holds a use of the coupon
    (`coupons.reserve_use`). Raises the cart's errors (coupon: 404 INVALID_COUPON, 400
    COUPON_INACTIVE / COUPON_EXPIRED / COUPON_USED_UP), Invalid when a paid order has no
    `checkout.payment_token`, Conflict CHECKOUT_IN_PROGRESS, Conflict IDEMPOTENCY_KEY_REUSED; nothing is
    kept then (claims and hold given back). An order replayed by its key keeps its own hold.
    """
    models = await _models_for(db, buyer, model_ids)
    coupon = await coupons.get_valid_coupon(db, coupon_code, uses=False) if coupon_code else None
    if coupon:
        coupons.check_minimum(coupon, sum(m.get("price_cents") or 0 for m in models))
        await check_coupon_limit(db, coupon, buyer["_id"])
    prices = [m.get("price_cents") or 0 for m in models]
    if not payment_token and sum(prices) > sum(coupons.discounts(coupon, prices)):
        raise Invalid({"payment_details.card_token": ["A card token or payment method is required"]})
    lines = _lines(models, coupon, await _next_numbers(db, "TXN", len(models)))
    order = {"number": (await _next_numbers(db, "ORD", 1))[0], "buyer_id": buyer["_id"],
             "status": "pending", "lines": lines, **money.totals(lines), "currency": charges.CURRENCY,
             "coupon_code": coupon["code"] if coupon else None,
             "coupon_id": coupon["_id"] if coupon else None,
             "coupon_hold": "held" if coupon else None, "payment_method": payment_method,
             "provider": provider, "payment_intent_id": None, "idempotency_key": idempotency_key,
             "fingerprint": body_fingerprint, "failure_code": None, "failure_message": None,
             "created_at": utcnow(), "paid_at": None, "fulfilled_at": None, "emailed_at": None,
             "notified_sellers": [], "counted": False}
    order["_id"] = ObjectId()
    await _claim(db, order["_id"], buyer["_id"], [line["model_id"] for line in lines])
    # An order of the same models may have been paid between `_models_for` and the claim:
    # it writes its purchases before it releases its claims, so they show now.
    if await purchases.owned_model_ids(db, buyer["_id"], [line["model_id"] for line in lines]):
        await release_claims(db, order["_id"])
        raise Conflict("You already own this model", "ALREADY_PURCHASED")
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
            await coupons.drop_hold(db, coupon["_id"], order["_id"])
        existing = await find_by_key(db, buyer["_id"], idempotency_key, body_fingerprint)
        if existing is None:
            raise
        return existing
    if coupon:
        await coupons.confirm_hold(db, coupon["_id"], order["_id"])
    return order


async def coupon_uses(db, user_id, coupon_id) -> int:
    """How many of `user_id`'s orders hold or used coupon `coupon_id`."""
    return await db[ORDERS].count_documents({"buyer_id": user_id, "coupon_id": coupon_id,
                                             "coupon_hold": {"$in": ["held", "used"]}})


async def check_coupon_limit(db, coupon: dict, user_id) -> None:
    """Raise BadRequest COUPON_LIMIT_REACHED (400) when `user_id` used `coupon` as often as
    its `per_user_limit` allows (orders waiting for their payment count)."""
    coupons.check_user_limit(coupon, await coupon_uses(db, user_id, coupon["_id"]))


async def quote_cart(db, user: dict, coupon: dict | None) -> dict:
    """`user`'s cart priced with `coupon` (`cart.get_cart`), refused like a checkout would
    be when the coupon's per-buyer limit is reached (400 COUPON_LIMIT_REACHED)."""
    out = await cart.get_cart(db, user, coupon)
    if coupon is not None:
        await check_coupon_limit(db, coupon, user["_id"])
    return out


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
    """Give back the coupon use held by a failed or canceled order, exactly once. True when
    this call gave it back; a paid or open order, or one without a hold, is left alone.

    Three steps, each conditional, so a retry, a replayed webhook or a racing request gives
    nothing back twice and a crash between them strands nothing for long:
    1. the order's ``coupon_hold: held → releasing`` decides who gives it back;
    2. the coupon's ``remaining +1, reserved_count -1`` with ``release:<order_id>`` in its
       `ops` (`coupons.release_use`, skipped when that op is already there);
    3. the order's ``releasing → released``, then the op is forgotten.
    An order left ``releasing`` past `reclaim.STRANDED_AFTER` is finished by the periodic job
    (`finish_release`)."""
    won = await db[ORDERS].find_one_and_update(
        {"_id": order_id, "coupon_hold": "held", "status": {"$in": ["failed", "canceled"]}},
        {"$set": {"coupon_hold": "releasing", "coupon_releasing_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if won is None:
        return False
    return await finish_release(db, won)


async def finish_release(db, order: dict) -> bool:
    """Steps 2 and 3 of `release_coupon` for an order whose hold is ``releasing``. True when
    this call gave the use back (False: an earlier, interrupted call already had)."""
    given = await coupons.release_use(db, order["coupon_id"], order["_id"])
    await db[ORDERS].update_one(
        {"_id": order["_id"], "coupon_hold": "releasing"},
        {"$set": {"coupon_hold": "released", "coupon_released_at": utcnow()}})
    await coupons.forget_release(db, order["coupon_id"], order["_id"])
    return given


# --------------------------------------------------------------------------- stranded holds

async def abandoned_holding_coupon(db, before, limit: int) -> list:
    """The ids of open orders (OPEN) that hold a coupon use (``coupon_hold: "held"``) and were
    created at or before `before` (a UTC datetime), at most `limit`."""
    docs = await db[ORDERS].find(
        {"coupon_hold": "held", "status": {"$in": list(OPEN)},
         "created_at": {"$lte": before}}, {"_id": 1}).to_list(limit)
    return [d["_id"] for d in docs]


async def closed_holding_coupon(db, limit: int) -> list:
    """The ids of failed or canceled orders whose coupon use was never given back
    (``coupon_hold: "held"``), at most `limit`."""
    docs = await db[ORDERS].find(
        {"coupon_hold": "held", "status": {"$in": ["failed", "canceled"]}},
        {"_id": 1}).to_list(limit)
    return [d["_id"] for d in docs]


async def releases_cut_short(db, before, limit: int) -> list[dict]:
    """Orders whose coupon give-back started at or before `before` (a UTC datetime) and
    never finished (``coupon_hold: "releasing"``): ``[{_id, coupon_id}]``, at most `limit`,
    as `finish_release` takes them."""
    return await db[ORDERS].find(
        {"coupon_hold": "releasing", "coupon_releasing_at": {"$lte": before}},
        {"_id": 1, "coupon_id": 1}).to_list(limit)


async def coupon_released(db, order_id) -> bool:
    """Whether the order exists and its coupon use is given back (``coupon_hold:
    "released"``)."""
    return await db[ORDERS].find_one(
        {"_id": order_id, "coupon_hold": "released"}, {"_id": 1}) is not None


async def is_stored(db, order_id) -> bool:
    """Whether an order with this id exists, in any state."""
    return await db[ORDERS].find_one({"_id": order_id}, {"_id": 1}) is not None


# --------------------------------------------------------------------------- rendering

async def transactions_of(db, order_id) -> list[dict]:
    """The transactions of an order, in line order."""
    return await db[TRANSACTIONS].find({"order_id": order_id}).sort(
        "transaction_id", ASCENDING).to_list(length=MAX_LINES)
