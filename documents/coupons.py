"""Coupons (seed 004 §5 `Coupon`, seed 001 §13 admin): what a coupon takes off, when it may be
used, and its counted uses.

`coupons` ``{_id, code (upper-case, unique), description, discount_type: "percent" | "fixed",
discount_percent (percent coupons), discount_amount_cents (fixed coupons), min_order_cents,
valid_from, expires_at, max_uses, per_user_limit (None: no limit), used_count,
reserved_count, remaining, is_active, created_by, created_at, updated_at, ops}``.

`used_count` is counted once per PAID order, never per attempt. Uses are held, so `max_uses`
holds even while orders wait for 3-D Secure:
- checkout holds a use (`reserve_use`: one conditional update, only while `remaining > 0`);
- a failed, canceled or never-stored order gives it back once (`release_use` after the
  order's conditional ``coupon_hold: held → releasing``, with ``release:<order_id>`` in
  `ops` until the order is marked released; `drop_hold`);
- a paid order turns it into a use once (`USE_HELD` through `money.apply_counter`).
Invariant, written only by these `$inc`s and by `update` (which moves `max_uses` and
`remaining` together): ``remaining == max_uses - used_count - reserved_count``, so
``used_count ≤ max_uses``. `ops` holds the operations in flight.

A percent coupon takes `discount_percent` off each line; a fixed coupon takes its amount off
the order, shared over the lines in proportion to their prices (`money.coupon_discounts`),
never more than the order. `min_order_cents` is judged on the order's subtotal; a buyer may
hold or use a coupon at most `per_user_limit` times (orders whose use is held or counted).

Staff changes (`create`, `update`, `delete`) are recorded in the admin audit log
(`admin_actions`, target `coupon`) once stored; a failure to record is logged.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from documents import admin_actions, money
from documents.common import from_cents, paginate, render, require_id, search_regex, utcnow
from documents.errors import BadRequest, Conflict, Invalid, NotFound

COUPONS = "coupons"
DISCOUNT_TYPES = ("percent", "fixed")
INDEXES = {COUPONS: [IndexModel([("code", ASCENDING)], unique=True),
                     IndexModel([("created_at", DESCENDING)])]}

USE_HELD = {"used_count": 1, "reserved_count": -1}   # a held use becomes a use
USE_UNHELD = {"used_count": 1, "remaining": -1}      # an order stored before holds existed
EDITABLE = ("description", "discount_type", "discount_percent", "discount_amount_cents",
            "min_order_cents", "valid_from", "expires_at", "per_user_limit", "is_active")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _check_terms(doc: dict) -> None:
    """Raise Invalid (422) when the stored terms of a coupon do not hold together."""
    errors: dict[str, list[str]] = {}
    if doc["discount_type"] == "percent":
        if not 0 < float(doc.get("discount_percent") or 0) <= 100:
            errors["discount_percent"] = ["A percent coupon takes 0 < percent ≤ 100"]
    elif int(doc.get("discount_amount_cents") or 0) <= 0:
        errors["discount_amount"] = ["A fixed coupon takes an amount above 0"]
    start, end = _aware(doc.get("valid_from")), _aware(doc.get("expires_at"))
    if start and end and end <= start:
        errors["expires_at"] = ["Must be after valid_from"]
    if errors:
        raise Invalid(errors)


async def create_coupon(db, code: str, discount_percent: float | None = None,
                        max_uses: int = 1, expires_at: datetime | None = None,
                        is_active: bool = True, **terms: Any) -> dict:
    """Store a coupon; `code` is upper-cased, all `max_uses` uses `remaining`.

    `terms` may hold `discount_type` ("percent" default, or "fixed" with
    `discount_amount_cents`), `min_order_cents`, `valid_from`, `per_user_limit`,
    `description`, `created_by`. Raises Conflict COUPON_EXISTS (409) for a taken code,
    Invalid (422) for a percent outside 0 < p ≤ 100, a fixed amount ≤ 0, fewer than one use
    or a window that ends before it starts.
    """
    if int(max_uses) < 1:
        raise Invalid({"max_uses": ["At least one use"]})
    now = utcnow()
    doc = {"code": code.strip().upper(), "description": terms.get("description"),
           "discount_type": terms.get("discount_type") or "percent",
           "discount_percent": discount_percent,
           "discount_amount_cents": terms.get("discount_amount_cents"),
           "min_order_cents": int(terms.get("min_order_cents") or 0),
           "valid_from": terms.get("valid_from"), "expires_at": expires_at,
           "max_uses": int(max_uses), "per_user_limit": terms.get("per_user_limit"),
           "used_count": 0, "reserved_count": 0, "remaining": int(max_uses),
           "is_active": is_active, "created_by": terms.get("created_by"), "ops": [],
           "created_at": now, "updated_at": now}
    _check_terms(doc)
    try:
        result = await db[COUPONS].insert_one(doc)
    except DuplicateKeyError:
        raise Conflict("A coupon with this code exists", "COUPON_EXISTS") from None
    doc["_id"] = result.inserted_id
    return doc


async def create(db, admin: dict, data: dict) -> dict:
    """Create a coupon for staff (seed 001 §13 Revenue): `data` holds `code`, `max_uses`
    and any of `discount_percent`, `expires_at`, `is_active` and the `terms` of
    `create_coupon`; `created_by` is `admin`. Records `coupon_created` with `data` as its
    details. Returns the stored coupon; raises as `create_coupon`."""
    terms = dict(data)
    coupon = await create_coupon(
        db, terms.pop("code"), terms.pop("discount_percent", None),
        max_uses=terms.pop("max_uses"), expires_at=terms.pop("expires_at", None),
        is_active=terms.pop("is_active", True), created_by=admin["_id"], **terms)
    await admin_actions.record_after(db, admin, "coupon_created", "coupon", coupon["_id"],
                                     render(data))
    return coupon


async def get(db, coupon_id: Any) -> dict:
    """The coupon `coupon_id`; raises NotFound (404 NOT_FOUND, also for a bad id)."""
    coupon = await db[COUPONS].find_one({"_id": require_id(coupon_id, "Coupon")})
    if coupon is None:
        raise NotFound("Coupon not found")
    return await with_counts(db, coupon)


async def update(db, coupon_id: Any, changes: dict, *, actor: dict) -> dict:
    """Change a coupon's terms (`EDITABLE`, `code`, `max_uses`) for staff `actor`, recorded
    as `coupon_updated` with `changes` as its details; returns the coupon as stored.

    A new `max_uses` moves `remaining` by the same step in one conditional update, so uses
    already counted or held are kept: below ``used_count + reserved_count`` it raises
    Conflict MAX_USES_BELOW_USES (409). Raises NotFound, Conflict COUPON_EXISTS, Invalid as
    `create_coupon`.
    """
    coupon = await get(db, coupon_id)
    sets = {k: changes[k] for k in EDITABLE if k in changes}
    if "code" in changes:
        sets["code"] = changes["code"].strip().upper()
    _check_terms({**coupon, **sets})
    sets["updated_at"] = utcnow()
    query: dict = {"_id": coupon["_id"]}
    update_doc: dict = {"$set": sets}
    if "max_uses" in changes and int(changes["max_uses"]) != coupon["max_uses"]:
        step = int(changes["max_uses"]) - coupon["max_uses"]
        query.update({"max_uses": coupon["max_uses"], "remaining": {"$gte": max(0, -step)}})
        update_doc["$inc"] = {"max_uses": step, "remaining": step}
    try:
        after = await db[COUPONS].find_one_and_update(query, update_doc,
                                                      return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:
        raise Conflict("A coupon with this code exists", "COUPON_EXISTS") from None
    if after is None:
        raise Conflict("max_uses cannot go below the uses counted and held",
                       "MAX_USES_BELOW_USES")
    await admin_actions.record_after(db, actor, "coupon_updated", "coupon", after["_id"],
                                     render(changes))
    return after


async def delete(db, coupon_id: Any, *, actor: dict) -> dict:
    """Delete a coupon no open order holds (orders keep its code), recorded as
    `coupon_deleted` by staff `actor` with ``{code, used_count}``. Returns the deleted
    coupon. Raises NotFound, Conflict COUPON_IN_USE (409) while a use is held."""
    coupon = await get(db, coupon_id)
    result = await db[COUPONS].delete_one({"_id": coupon["_id"], "reserved_count": 0,
                                           "ops": []})
    if result.deleted_count != 1:
        raise Conflict("An open order holds a use of this coupon; deactivate it instead",
                       "COUPON_IN_USE")
    await admin_actions.record_after(db, actor, "coupon_deleted", "coupon", coupon["_id"],
                                     {"code": coupon["code"],
                                      "used_count": coupon.get("used_count", 0)})
    return coupon


async def list_page(db, *, page: int, limit: int, search: str | None = None,
                    active: bool | None = None) -> tuple[list[dict], dict]:
    """One page of coupons for staff, newest first, filtered by code `search` and `active`."""
    query: dict = {}
    if search:
        query["code"] = search_regex(search)
    if active is not None:
        query["is_active"] = True if active else {"$ne": True}
    docs, meta = await paginate(db[COUPONS], query, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    return [render_admin(d) for d in docs], meta


def render_admin(coupon: dict) -> dict:
    """A coupon for staff: ``{id, code, description, discount_type, discount_percent,
    discount_amount, min_order_amount, valid_from, expires_at, valid_until, max_uses,
    per_user_limit, used_count, uses_count, reserved_count, remaining, is_active,
    created_by, created_at, updated_at}`` (amounts in decimal dollars)."""
    out = render({k: v for k, v in coupon.items() if k not in ("ops", "min_order_cents")})
    out["discount_amount"] = from_cents(coupon.get("discount_amount_cents") or 0) \
        if coupon.get("discount_type") == "fixed" else None
    out["min_order_amount"] = from_cents(coupon.get("min_order_cents") or 0)
    out["discount_type"] = coupon.get("discount_type") or "percent"
    out["valid_until"] = out.get("expires_at")
    out["uses_count"] = coupon.get("used_count", 0)
    out.setdefault("remaining", coupon.get("max_uses", 0) - coupon.get("used_count", 0))
    return out


def render_coupon(coupon: dict | None) -> dict | None:
    """What a buyer sees of an applied coupon: ``{code, discount_type, discount_percent,
    discount_amount, min_order_amount, expires_at}`` or None."""
    if coupon is None:
        return None
    fixed = coupon.get("discount_type") == "fixed"
    return {"code": coupon["code"], "discount_type": "fixed" if fixed else "percent",
            "discount_percent": None if fixed else coupon.get("discount_percent"),
            "discount_amount": from_cents(coupon.get("discount_amount_cents")) if fixed else None,
            "min_order_amount": from_cents(coupon.get("min_order_cents") or 0),
            "expires_at": render(coupon.get("expires_at"))}


# --------------------------------------------------------------------------- use

def discounts(coupon: dict | None, prices_cents: list[int]) -> list[int]:
    """Per-line discounts in cents of `coupon` on lines priced `prices_cents` (zeros without
    a coupon); see `money.coupon_discounts`."""
    if coupon is None:
        return [0] * len(prices_cents)
    if coupon.get("discount_type") == "fixed":
        return money.coupon_discounts(prices_cents, amount_cents=coupon["discount_amount_cents"])
    return money.coupon_discounts(prices_cents, percent=coupon["discount_percent"])


def check_minimum(coupon: dict | None, subtotal_cents: int) -> None:
    """Raise BadRequest COUPON_MIN_ORDER (400) when the order is below the coupon's minimum."""
    minimum = int((coupon or {}).get("min_order_cents") or 0)
    if subtotal_cents < minimum:
        raise BadRequest(f"This coupon needs an order of at least {from_cents(minimum):.2f}",
                         "COUPON_MIN_ORDER")


def check_user_limit(coupon: dict, taken: int) -> None:
    """Raise BadRequest COUPON_LIMIT_REACHED (400) when a buyer who already holds or used
    the coupon `taken` times (`documents.orders.coupon_uses`) reached its `per_user_limit`."""
    limit = coupon.get("per_user_limit")
    if limit and taken >= int(limit):
        raise BadRequest("You have used this coupon as often as it allows",
                         "COUPON_LIMIT_REACHED")


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
    COUPON_INACTIVE / COUPON_NOT_STARTED / COUPON_EXPIRED, and (with `uses`) COUPON_USED_UP
    when no use is left (used by paid orders or held by open ones). Returns the coupon."""
    if coupon is None:
        raise NotFound("Unknown coupon code", "INVALID_COUPON")
    if not coupon.get("is_active", True):
        raise BadRequest("This coupon is not active", "COUPON_INACTIVE")
    now = utcnow()
    starts = _aware(coupon.get("valid_from"))
    if starts is not None and starts > now:
        raise BadRequest("This coupon is not valid yet", "COUPON_NOT_STARTED")
    expires = _aware(coupon.get("expires_at"))
    if expires is not None and expires <= now:
        raise BadRequest("This coupon has expired", "COUPON_EXPIRED")
    if uses and coupon.get("remaining", 0) <= 0:
        raise BadRequest("This coupon has been used up", "COUPON_USED_UP")
    return coupon


async def get_by_code(db, code: str) -> dict | None:
    """The coupon stored under `code` exactly (upper-case, as `create_coupon` stores it),
    whatever its state, without its counts; or None."""
    return await db[COUPONS].find_one({"code": code})


async def get_valid_coupon(db, code: str, *, uses: bool = True) -> dict:
    """The usable coupon `code` (case-insensitive); raises as `check_coupon`. Only a quote:
    checkout takes the use with `reserve_use`."""
    coupon = await get_by_code(db, str(code).strip().upper())
    return check_coupon(await with_counts(db, coupon) if coupon else None, uses=uses)


async def reserve_use(db, coupon: dict, order_id) -> dict:
    """Hold one use of `coupon` for the order `order_id` about to be stored (`max_uses` is
    never exceeded, however many orders wait for their payment).

    One conditional update that succeeds only while the coupon is active, inside its window
    and has a use `remaining`: ``remaining -1, reserved_count +1`` and ``hold:<order_id>``
    pushed to `ops` (in flight until the order is stored: `confirm_hold`, or `drop_hold` when
    it is not). Returns the coupon after; raises as `check_coupon` when no use can be held.
    """
    now = utcnow()
    held = await db[COUPONS].find_one_and_update(
        {"_id": coupon["_id"], "is_active": {"$ne": False}, "remaining": {"$gt": 0},
         "$and": [{"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]},
                  {"$or": [{"valid_from": None}, {"valid_from": {"$lte": now}}]}],
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


async def release_use(db, coupon_id, order_id) -> bool:
    """Give back the use held by the closed order `order_id` (``remaining +1,
    reserved_count -1``), at most once while ``release:<order_id>`` is in `ops`: the caller
    (`documents.orders.release_coupon`) forgets that op (`forget_release`) only after marking
    the order released, so the give-back is never repeated. True when this call gave it."""
    result = await db[COUPONS].update_one(
        {"_id": coupon_id, "ops": {"$ne": f"release:{order_id}"}},
        {"$inc": {"remaining": 1, "reserved_count": -1}, "$push": {"ops": f"release:{order_id}"}})
    return result.modified_count == 1


async def forget_release(db, coupon_id, order_id) -> None:
    """The order `order_id` is marked released: its give-back is no longer in flight."""
    await money.forget_op(db[COUPONS], coupon_id, f"release:{order_id}")


async def with_ops_in_flight(db, kind: str) -> AsyncIterator[dict]:
    """The coupons with an op of `kind` (``"hold"`` or ``"release"``) in flight in their
    `ops`, streamed as ``{_id, ops}``."""
    async for coupon in db[COUPONS].find({"ops": {"$regex": f"^{kind}:"}}, {"ops": 1}):
        yield coupon


async def has_op(db, coupon_id, op: str) -> bool:
    """Whether the coupon still has `op` in flight in its `ops`."""
    return await db[COUPONS].find_one({"_id": coupon_id, "ops": op}, {"_id": 1}) is not None
