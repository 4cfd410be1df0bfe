"""Giving back what a crash stranded (the periodic job `reclaim_stranded`).

Coupon uses (`documents.cart`, `documents.orders`):
- an open order (pending, requires_action) holding a coupon use and abandoned for
  `orders.CLAIM_TTL` is canceled; its claims and its hold are given back;
- a failed or canceled order whose hold was never given back (``coupon_hold: "held"``: the
  process stopped between the two writes) gives it back (`orders.release_coupon`, once);
- a give-back cut short (``coupon_hold: "releasing"`` for STRANDED_AFTER) is finished
  (`orders.finish_release`: given back unless ``release:<order id>`` shows it was), and a
  ``release:<order id>`` op whose order is already released is forgotten;
- a use held for an order that was never stored (``hold:<order id>`` still in the coupon's
  `ops`, no such order, older than CLAIM_TTL) is dropped (`coupons.drop_hold`, once).

Payout amounts (`documents.payouts`): a request leaves ``payout:<id>:<amount>`` in the
seller balance's `ops` until its payout and ledger line are written. Older than
STRANDED_AFTER, the op is resolved: the payout exists → its ledger line is written and the op
dropped (`payouts.finish_take`); it does not → the amount goes back to `available_cents`,
conditional on the op, so exactly once.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from bson import ObjectId
from bson.errors import InvalidId

from documents import coupons, money, orders, payouts
from documents.common import utcnow

log = logging.getLogger("hwc3d.reclaim")

STRANDED_AFTER = timedelta(minutes=10)
BATCH = 500
_HOLD = re.compile(r"^hold:([0-9a-f]{24})$")
_RELEASE = re.compile(r"^release:([0-9a-f]{24})$")
_TAKE = re.compile(r"^payout:([0-9a-f]{24}):(-?\d+)$")


def _older(oid: ObjectId, cutoff: datetime) -> bool:
    return oid.generation_time <= cutoff


async def reclaim_coupons(db, now: datetime | None = None) -> int:
    """Give back every stranded coupon use; returns how many were given back."""
    now = now or utcnow()
    given = 0
    abandoned = await db[orders.ORDERS].find(
        {"coupon_hold": "held", "status": {"$in": list(orders.OPEN)},
         "created_at": {"$lte": now - orders.CLAIM_TTL}}, {"_id": 1}).to_list(BATCH)
    for order in abandoned:
        if await orders.cancel_order(db, order["_id"]):
            await orders.release_claims(db, order["_id"])
            given += 1
    closed = await db[orders.ORDERS].find(
        {"coupon_hold": "held", "status": {"$in": ["failed", "canceled"]}},
        {"_id": 1}).to_list(BATCH)
    for order in closed:
        given += await orders.release_coupon(db, order["_id"])
    cut_short = await db[orders.ORDERS].find(
        {"coupon_hold": "releasing", "coupon_releasing_at": {"$lte": now - STRANDED_AFTER}},
        {"_id": 1, "coupon_id": 1}).to_list(BATCH)
    for order in cut_short:
        given += await orders.finish_release(db, order)
    await _forget_finished_releases(db)
    given += await _drop_unstored_holds(db, now - orders.CLAIM_TTL)
    if given:
        log.info("gave back %d stranded coupon uses", given)
    return given


async def _forget_finished_releases(db) -> None:
    async for coupon in db[coupons.COUPONS].find({"ops": {"$regex": "^release:"}}, {"ops": 1}):
        for op in coupon.get("ops") or []:
            match = _RELEASE.match(op)
            if match and await db[orders.ORDERS].find_one(
                    {"_id": ObjectId(match.group(1)), "coupon_hold": "released"}, {"_id": 1}):
                await coupons.forget_release(db, coupon["_id"], ObjectId(match.group(1)))


async def _drop_unstored_holds(db, cutoff: datetime) -> int:
    dropped = 0
    async for coupon in db[coupons.COUPONS].find({"ops": {"$regex": "^hold:"}}, {"ops": 1}):
        for op in coupon.get("ops") or []:
            match = _HOLD.match(op)
            if not match or not _older(ObjectId(match.group(1)), cutoff):
                continue
            order_id = ObjectId(match.group(1))
            if await db[orders.ORDERS].find_one({"_id": order_id}, {"_id": 1}) is not None:
                await coupons.confirm_hold(db, coupon["_id"], order_id)  # stored: only forget op
                continue
            before = await db[coupons.COUPONS].find_one({"_id": coupon["_id"], "ops": op}, {"_id": 1})
            await coupons.drop_hold(db, coupon["_id"], order_id)
            dropped += before is not None
    return dropped


async def reclaim_payouts(db, now: datetime | None = None) -> int:
    """Resolve every stranded payout take; returns the cents given back."""
    cutoff = (now or utcnow()) - STRANDED_AFTER
    given = 0
    async for balance in db[money.BALANCES].find({"ops": {"$regex": "^payout:"}},
                                                 {"ops": 1}):
        for op in balance.get("ops") or []:
            match = _TAKE.match(op)
            if not match:
                continue
            try:
                payout_id, amount = ObjectId(match.group(1)), int(match.group(2))
            except InvalidId:
                continue
            if not _older(payout_id, cutoff):
                continue
            payout = await db[payouts.PAYOUTS].find_one({"_id": payout_id})
            if payout is not None:
                await payouts.finish_take(db, payout)
                continue
            result = await db[money.BALANCES].update_one(
                {"_id": balance["_id"], "ops": op},
                {"$inc": {"available_cents": amount}, "$pull": {"ops": op}})
            if result.modified_count:
                log.warning("gave back %d cents of payout %s that was never stored to "
                            "seller %s", amount, payout_id, balance["_id"])
                given += amount
    return given
