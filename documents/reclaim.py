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

from documents import coupons, orders, payouts
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
    for order_id in await orders.abandoned_holding_coupon(db, now - orders.CLAIM_TTL, BATCH):
        if await orders.cancel_order(db, order_id):
            await orders.release_claims(db, order_id)
            given += 1
    for order_id in await orders.closed_holding_coupon(db, BATCH):
        given += await orders.release_coupon(db, order_id)
    for order in await orders.releases_cut_short(db, now - STRANDED_AFTER, BATCH):
        given += await orders.finish_release(db, order)
    await _forget_finished_releases(db)
    given += await _drop_unstored_holds(db, now - orders.CLAIM_TTL)
    if given:
        log.info("gave back %d stranded coupon uses", given)
    return given


async def _forget_finished_releases(db) -> None:
    async for coupon in coupons.with_ops_in_flight(db, "release"):
        for op in coupon.get("ops") or []:
            match = _RELEASE.match(op)
            if match and await orders.coupon_released(db, ObjectId(match.group(1))):
                await coupons.forget_release(db, coupon["_id"], ObjectId(match.group(1)))


async def _drop_unstored_holds(db, cutoff: datetime) -> int:
    dropped = 0
    async for coupon in coupons.with_ops_in_flight(db, "hold"):
        for op in coupon.get("ops") or []:
            match = _HOLD.match(op)
            if not match or not _older(ObjectId(match.group(1)), cutoff):
                continue
            order_id = ObjectId(match.group(1))
            if await orders.is_stored(db, order_id):
                await coupons.confirm_hold(db, coupon["_id"], order_id)  # stored: only forget op
                continue
            held = await coupons.has_op(db, coupon["_id"], op)
            await coupons.drop_hold(db, coupon["_id"], order_id)
            dropped += held
    return dropped


async def reclaim_payouts(db, now: datetime | None = None) -> int:
    """Resolve every stranded payout take; returns the cents given back."""
    cutoff = (now or utcnow()) - STRANDED_AFTER
    given = 0
    async for balance in payouts.balances_with_takes(db):
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
            payout = await payouts.stored(db, payout_id)
            if payout is not None:
                await payouts.finish_take(db, payout)
                continue
            if await payouts.give_back_take(db, balance["_id"], op, amount):
                log.warning("gave back %d cents of payout %s that was never stored to "
                            "seller %s", amount, payout_id, balance["_id"])
                given += amount
    return given
