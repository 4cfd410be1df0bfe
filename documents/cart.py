"""The cart and coupons (seed 000 §4 `Cart`, seed 004 §5 `Cart`/`Coupon`; issue 5 item 1).

`cart_items` ``{_id, user_id, model_id, added_at}``, unique (user_id, model_id).
`coupons` ``{_id, code (upper-case, unique), discount_percent, max_uses, used_count,
reserved_count, remaining, expires_at, is_active, created_at, ops}``; `used_count` is counted
once per PAID order, never per attempt (issue 5 item 1). Uses are held, so `max_uses` holds
even while orders wait for 3-D Secure:
- checkout holds a use (`reserve_use`: one conditional update, only while `remaining > 0`);
- a failed, canceled or never-stored order gives it back once (`release_use` after the
  order's conditional ``coupon_hold: held → released``; `drop_hold`);
- a paid order turns it into a use once (`USE_HELD` through `money.apply_counter`).
Invariant, written only by these `$inc`s: ``remaining == max_uses - used_count -
reserved_count``, so ``used_count ≤ max_uses``. `ops` holds the operations in flight.

What may be bought (`check_buyable`, shared with checkout): a public model (approved and
published) that is not the buyer's own and not already bought. The cart also refuses free
models (they are downloaded without buying); checkout accepts them and "buys" them at 0.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import catalog, money, users
from documents.common import from_cents, render, require_id, utcnow
from documents.errors import BadRequest, Conflict, NotFound

ITEMS = "cart_items"
COUPONS = "coupons"
PURCHASES = "purchases"
MAX_CART_ITEMS = 50

INDEXES = {
    ITEMS: [IndexModel([("user_id", ASCENDING), ("model_id", ASCENDING)], unique=True),
            IndexModel([("user_id", ASCENDING), ("added_at", DESCENDING)])],
    COUPONS: [IndexModel([("code", ASCENDING)], unique=True)],
}


# --------------------------------------------------------------------------- rules

async def owned_model_ids(db, user_id, model_ids: list) -> set:
    """The ids among `model_ids` that `user_id` has an active purchase of."""
    cursor = db[PURCHASES].find({"user_id": user_id, "model_id": {"$in": list(model_ids)},
                                 "status": "active"}, {"model_id": 1})
    return {doc["model_id"] async for doc in cursor}


def check_buyable(user: dict, model: dict, *, allow_free: bool) -> None:
    """Raise when `user` may not buy `model` (seed 000 §4): BadRequest CANNOT_BUY_OWN_MODEL,
    NotFound MODEL_NOT_AVAILABLE (not approved or not published), BadRequest MODEL_IS_FREE
    (unless `allow_free`)."""
    if model["creator_id"] == user["_id"]:
        raise BadRequest("You cannot buy your own model", "CANNOT_BUY_OWN_MODEL")
    if not catalog.is_public(model):
        raise NotFound("This model is not available for sale", "MODEL_NOT_AVAILABLE")
    if not allow_free and (model.get("is_free") or not model.get("price_cents")):
        raise BadRequest("This model is free: download it without buying", "MODEL_IS_FREE")


async def get_buyable(db, user: dict, model_id: Any, *, allow_free: bool) -> dict:
    """The model `model_id` if `user` may buy it; raises as `check_buyable`, NotFound for an
    unknown or invalid id, Conflict ALREADY_PURCHASED when bought already."""
    model = await catalog.get_model(db, model_id)
    check_buyable(user, model, allow_free=allow_free)
    if await owned_model_ids(db, user["_id"], [model["_id"]]):
        raise Conflict("You already own this model", "ALREADY_PURCHASED")
    return model


# --------------------------------------------------------------------------- coupons

def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def create_coupon(db, code: str, discount_percent: float, max_uses: int,
                        expires_at: datetime | None, is_active: bool = True) -> dict:
    """Store a coupon (seed 004 `Coupon`); `code` is upper-cased, all `max_uses` uses
    `remaining`. Raises Conflict COUPON_EXISTS for a taken code, BadRequest for a percent
    outside 0 < p ≤ 100 or fewer than one use."""
    if not 0 < discount_percent <= 100 or max_uses < 1:
        raise BadRequest("A coupon takes 0 < percent ≤ 100 and at least one use")
    doc = {"code": code.strip().upper(), "discount_percent": discount_percent,
           "max_uses": int(max_uses), "used_count": 0, "reserved_count": 0,
           "remaining": int(max_uses), "expires_at": expires_at, "is_active": is_active,
           "ops": [], "created_at": utcnow()}
    try:
        result = await db[COUPONS].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("A coupon with this code exists", "COUPON_EXISTS") from None
    doc["_id"] = result.inserted_id
    return doc


async def with_counts(db, coupon: dict) -> dict:
    """Give a coupon stored before reservations existed its `remaining`/`reserved_count`
    (once: conditional on the field being absent); returns the coupon as stored now."""
    if "remaining" in coupon:
        return coupon
    await db[COUPONS].update_one(
        {"_id": coupon["_id"], "remaining": {"$exists": False}},
        {"$set": {"remaining": int(coupon.get("max_uses", 0)) - int(coupon.get("used_count", 0)),
                  "reserved_count": 0}})
    return await db[COUPONS].find_one({"_id": coupon["_id"]})


def check_coupon(coupon: dict | None, *, uses: bool = True) -> dict:
    """Raise when `coupon` cannot be used now: NotFound INVALID_COUPON, BadRequest
    COUPON_INACTIVE / COUPON_EXPIRED, and (with `uses`) COUPON_USED_UP when no use is left
    (used by paid orders or held by open ones). Returns the coupon."""
    if coupon is None:
        raise NotFound("Unknown coupon code", "INVALID_COUPON")
    if not coupon.get("is_active", True):
        raise BadRequest("This coupon is not active", "COUPON_INACTIVE")
    expires = _aware(coupon.get("expires_at"))
    if expires is not None and expires <= utcnow():
        raise BadRequest("This coupon has expired", "COUPON_EXPIRED")
    if uses and coupon.get("remaining", 0) <= 0:
        raise BadRequest("This coupon has been used up", "COUPON_USED_UP")
    return coupon


async def get_valid_coupon(db, code: str, *, uses: bool = True) -> dict:
    """The usable coupon `code` (case-insensitive); raises as `check_coupon` (seed 004
    `Coupon`). Only a quote: checkout takes the use with `reserve_use`."""
    coupon = await db[COUPONS].find_one({"code": str(code).strip().upper()})
    return check_coupon(await with_counts(db, coupon) if coupon else None, uses=uses)


async def reserve_use(db, coupon: dict, order_id) -> dict:
    """Hold one use of `coupon` for the order `order_id` about to be stored (issue 5 item 1:
    `max_uses` is never exceeded, however many orders wait for their payment).

    One conditional update that succeeds only while the coupon is active, unexpired and has
    a use `remaining`: ``remaining -1, reserved_count +1`` and ``hold:<order_id>`` pushed to
    `ops` (in flight until the order is stored: `confirm_hold`, or `drop_hold` when it is not).
    Returns the coupon after; raises as `check_coupon` when no use can be held.
    """
    now = utcnow()
    held = await db[COUPONS].find_one_and_update(
        {"_id": coupon["_id"], "is_active": {"$ne": False}, "remaining": {"$gt": 0},
         "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}],
         "ops": {"$ne": f"hold:{order_id}"}},
        {"$inc": {"remaining": -1, "reserved_count": 1}, "$push": {"ops": f"hold:{order_id}"}},
        return_document=ReturnDocument.AFTER)
    if held is None:
        check_coupon(await db[COUPONS].find_one({"_id": coupon["_id"]}))
        raise BadRequest("This coupon has been used up", "COUPON_USED_UP")
    return held


async def confirm_hold(db, coupon_id, order_id) -> None:
    """The order holding the use is stored: the hold is no longer in flight."""
    await money.forget_op(db[COUPONS], coupon_id, f"hold:{order_id}")


async def drop_hold(db, coupon_id, order_id) -> None:
    """Give back a use held for an order that was never stored (exactly once: conditional on
    the in-flight ``hold:<order_id>``)."""
    await db[COUPONS].update_one(
        {"_id": coupon_id, "ops": f"hold:{order_id}"},
        {"$inc": {"remaining": 1, "reserved_count": -1}, "$pull": {"ops": f"hold:{order_id}"}})


async def release_use(db, coupon_id) -> None:
    """Give back one held use (``remaining +1, reserved_count -1``). The caller guarantees
    once per order (`documents.orders.release_coupon` wins a conditional update first)."""
    await db[COUPONS].update_one({"_id": coupon_id},
                                 {"$inc": {"remaining": 1, "reserved_count": -1}})


USE_HELD = {"used_count": 1, "reserved_count": -1}   # a held use becomes a use
USE_UNHELD = {"used_count": 1, "remaining": -1}      # an order stored before holds existed


def render_coupon(coupon: dict | None) -> dict | None:
    """``{code, discount_percent, expires_at}`` or None."""
    if coupon is None:
        return None
    return render({k: coupon.get(k) for k in ("code", "discount_percent", "expires_at")})


# --------------------------------------------------------------------------- cart

async def add_item(db, user: dict, model_id: Any) -> dict:
    """Put a buyable, priced model in the user's cart; returns the cart item.

    Raises as `get_buyable` (free models refused: MODEL_IS_FREE), Conflict ALREADY_IN_CART,
    Conflict CART_FULL past 50 items.
    """
    model = await get_buyable(db, user, model_id, allow_free=False)
    if await db[ITEMS].count_documents({"user_id": user["_id"]}) >= MAX_CART_ITEMS:
        raise Conflict(f"A cart holds at most {MAX_CART_ITEMS} models", "CART_FULL")
    item = {"user_id": user["_id"], "model_id": model["_id"], "added_at": utcnow()}
    try:
        result = await db[ITEMS].insert_one(item)
    except DuplicateKeyError:
        raise Conflict("This model is already in your cart", "ALREADY_IN_CART") from None
    item["_id"] = result.inserted_id
    return item


async def remove_item(db, user: dict, model_id: Any) -> None:
    """Take a model out of the user's cart. Raises NotFound NOT_IN_CART (also for bad ids)."""
    oid = require_id(model_id, "Cart item")
    result = await db[ITEMS].delete_one({"user_id": user["_id"], "model_id": oid})
    if result.deleted_count == 0:
        raise NotFound("This model is not in your cart", "NOT_IN_CART")


async def clear_models(db, user_id, model_ids: list) -> None:
    """Drop bought models from the user's cart (idempotent)."""
    await db[ITEMS].delete_many({"user_id": user_id, "model_id": {"$in": list(model_ids)}})


async def get_cart(db, user: dict, coupon: dict | None = None) -> dict:
    """The cart in API form (seed 000 §4 `GET /api/cart`)::

        {items: [{id, model_id, added_at, available, model: {...card}, price, discount,
                  amount}], item_count, subtotal, discount, total, platform_fee, currency,
         coupon: {code, discount_percent, expires_at} | None}

    Items that can no longer be bought (unpublished, bought since) stay listed with
    `available: false` and count in no total.
    """
    items = await db[ITEMS].find({"user_id": user["_id"]}).sort(
        [("added_at", ASCENDING), ("_id", ASCENDING)]).to_list(length=MAX_CART_ITEMS)
    model_ids = [i["model_id"] for i in items]
    models = {m["_id"]: m async for m in db[catalog.COLLECTION].find({"_id": {"$in": model_ids}})}
    owned = await owned_model_ids(db, user["_id"], model_ids)
    creators = await users.get_many(db, [m["creator_id"] for m in models.values()])
    percent = coupon["discount_percent"] if coupon else 0
    rendered, lines = [], []
    for item in items:
        model = models.get(item["model_id"])
        available = bool(model) and catalog.is_public(model) and item["model_id"] not in owned \
            and bool(model.get("price_cents")) and model["creator_id"] != user["_id"]
        line = money.price_line(model.get("price_cents", 0) if available else 0, percent)
        if available:
            lines.append(line)
        rendered.append({
            "id": str(item["_id"]), "model_id": str(item["model_id"]),
            "added_at": render(item["added_at"]), "available": available,
            "model": catalog.render_model(model, creators) if model else None,
            "price": from_cents(line["price_cents"]), "discount": from_cents(line["discount_cents"]),
            "amount": from_cents(line["amount_cents"])})
    sums = money.totals(lines)
    return {"items": rendered, "item_count": len(rendered),
            "subtotal": from_cents(sums["subtotal_cents"]),
            "discount": from_cents(sums["discount_cents"]),
            "total": from_cents(sums["total_cents"]), "platform_fee": from_cents(sums["fee_cents"]),
            "currency": "usd", "coupon": render_coupon(coupon)}
