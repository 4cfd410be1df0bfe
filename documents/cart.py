"""The cart (seed 000 §4 `Cart`, seed 004 §5 `Cart`), priced with a coupon of
`documents.coupons` when one is given.

`cart_items` ``{_id, user_id, model_id, added_at}``, unique (user_id, model_id).
What may be bought (`check_buyable`, shared with checkout): a public model (approved and
published) that is not the buyer's own and not already bought. The cart also refuses free
models (they are downloaded without buying); checkout accepts them and "buys" them at 0.
"""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents import catalog, coupons, money, purchases, users
from documents.common import from_cents, render, require_id, utcnow
from documents.errors import BadRequest, Conflict, NotFound

ITEMS = "cart_items"
MAX_CART_ITEMS = 50

INDEXES = {
    ITEMS: [IndexModel([("user_id", ASCENDING), ("model_id", ASCENDING)], unique=True),
            IndexModel([("user_id", ASCENDING), ("added_at", DESCENDING)])],
}


# --------------------------------------------------------------------------- rules

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
    if await purchases.owned_model_ids(db, user["_id"], [model["_id"]]):
        raise Conflict("You already own this model", "ALREADY_PURCHASED")
    return model


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
         coupon: {code, discount_type, discount_percent, discount_amount, min_order_amount,
                  expires_at} | None}

    Items that can no longer be bought (unpublished, bought since) stay listed with
    `available: false` and count in no total. With a `coupon`, raises BadRequest
    COUPON_MIN_ORDER when the available items are below its minimum order, and
    COUPON_LIMIT_REACHED when the user used it as often as it allows.
    """
    items = await db[ITEMS].find({"user_id": user["_id"]}).sort(
        [("added_at", ASCENDING), ("_id", ASCENDING)]).to_list(length=MAX_CART_ITEMS)
    model_ids = [i["model_id"] for i in items]
    models = await catalog.get_many(db, model_ids)
    owned = await purchases.owned_model_ids(db, user["_id"], model_ids)
    creators = await users.get_many(db, [m["creator_id"] for m in models.values()])
    flags = []
    for item in items:
        model = models.get(item["model_id"])
        flags.append(bool(model) and catalog.is_public(model) and item["model_id"] not in owned
                     and bool(model.get("price_cents")) and model["creator_id"] != user["_id"])
    prices = [models[i["model_id"]]["price_cents"] for i, ok in zip(items, flags, strict=True)
              if ok]
    if coupon is not None:
        coupons.check_minimum(coupon, sum(prices))
    shares = iter(coupons.discounts(coupon, prices))
    rendered, lines = [], []
    for item, available in zip(items, flags, strict=True):
        model = models.get(item["model_id"])
        line = money.price_line(model["price_cents"] if available else 0,
                                discount=next(shares) if available else 0)
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
            "currency": "usd", "coupon": coupons.render_coupon(coupon)}
