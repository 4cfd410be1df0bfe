"""Checkout helpers shared by the coupon and job tests: a coupon of a given size, a checkout
through the embedded payment provider (3-D Secure card `THREE_DS` included), and the
coupon's counters checked against its invariants."""
from __future__ import annotations

from datetime import timedelta

from demo_accounts import ROBOT

from documents import coupons
from documents.common import utcnow
from tests.stripe_stub import count

THREE_DS = {"payment_method_id": "pm_card_threeDSecure2Required"}


async def new_coupon(db, max_uses: int, code: str = "HALF") -> None:
    await coupons.create_coupon(db, code, 50, max_uses=max_uses,
                             expires_at=utcnow() + timedelta(days=1))


async def checkout(api, token, details, *, model_id=ROBOT, code="half", headers=None):
    return await api("POST", "/api/checkout", token=token, headers=headers, json={
        "model_ids": [model_id], "coupon_code": code, "payment_details": details})


async def coupon_counts(db, code: str = "HALF") -> tuple[int, int, int]:
    """(used_count, reserved_count, remaining), after checking the coupon's invariants against
    the stored orders."""
    coupon = await db.coupons.find_one({"code": code})
    used, reserved, remaining = (coupon["used_count"], coupon["reserved_count"],
                                 coupon["remaining"])
    assert remaining == coupon["max_uses"] - used - reserved
    assert 0 <= used <= coupon["max_uses"] and remaining >= 0 and coupon["ops"] == []
    assert reserved == await count(db, "orders", {"coupon_id": coupon["_id"],
                                                  "coupon_hold": "held"})
    assert used == await count(db, "orders", {"coupon_id": coupon["_id"], "status": "paid",
                                              "counted": True})
    return used, reserved, remaining
