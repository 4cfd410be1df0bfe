"""Small builders for the earnings, payouts, analytics and admin revenue tests: they insert
`models`, `transactions`, `ledger_entries` and `seller_balances` records directly, in the
shapes of the brief ("Money"), so these tests do not depend on checkout."""
from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from bson import ObjectId

from documents import money, users
from documents.common import to_cents, utcnow

_numbers = itertools.count(1)


def cents(value) -> int:
    """An API decimal as cents (exact for two places)."""
    return to_cents(value)


async def uid(db, email: str) -> ObjectId:
    return (await users.get_by_email(db, email))["_id"]


async def make_model(db, creator_id, *, status="approved", created_at=None, **fields) -> dict:
    """A model document with counters (defaults zero)."""
    now = created_at or utcnow()
    doc = {"_id": ObjectId(), "creator_id": creator_id,
           "title": f"Model {uuid.uuid4().hex[:8]}", "description": "", "price_cents": 1999,
           "is_free": False, "category": "Characters", "tags": [], "file_key": "models/x.glb",
           "file_format": "GLB", "file_formats": ["GLB"], "thumbnail_url": None,
           "preview_images": [], "views": 0, "likes": 0, "downloads": 0, "comment_count": 0,
           "sales_count": 0, "rating": 0.0, "rating_count": 0, "status": status,
           "is_featured": False, "is_published": True, "created_at": now, "updated_at": now,
           **fields}
    await db.models.insert_one(doc)
    return doc


async def make_sale(db, *, seller_id, buyer_id, model_id, amount_cents: int, created_at=None,
                    refunded_at=None, ledger: bool = True) -> dict:
    """A completed (or, with `refunded_at`, refunded) transaction, its pending `sale` ledger
    line (available after 14 days from `created_at`) and the seller balance moved."""
    created = created_at or utcnow()
    fee, seller_cents = money.split_line(amount_cents)
    txn = {"_id": ObjectId(), "transaction_id": f"TXN-{created.year}-{next(_numbers):06d}",
           "order_id": ObjectId(), "buyer_id": buyer_id, "seller_id": seller_id,
           "model_id": model_id, "amount_cents": amount_cents, "platform_fee_cents": fee,
           "seller_amount_cents": seller_cents, "discount_cents": 0, "coupon_code": None,
           "payment_method": "card",
           "payment_status": "refunded" if refunded_at else "completed",
           "created_at": created, "completed_at": created, "refunded_at": refunded_at}
    await db.transactions.insert_one(txn)
    if ledger:
        await sale_line(db, txn)
    return txn


async def sale_line(db, txn: dict) -> dict:
    entry = {"_id": ObjectId(), "seller_id": txn["seller_id"], "kind": "sale",
             "amount_cents": txn["seller_amount_cents"], "transaction_id": txn["transaction_id"],
             "payout_id": None, "status": "pending",
             "available_at": txn["created_at"] + money.REFUND_WINDOW,
             "created_at": txn["created_at"], "applied": True,
             "entry_key": f"sale:{txn['transaction_id']}"}
    await db.ledger_entries.insert_one(entry)
    await bump(db, txn["seller_id"], pending_cents=entry["amount_cents"])
    return entry


async def refund_line(db, txn: dict) -> dict:
    """The negative pending `refund` line of a sale that was still pending."""
    now = utcnow()
    entry = {"_id": ObjectId(), "seller_id": txn["seller_id"], "kind": "refund",
             "amount_cents": -txn["seller_amount_cents"], "transaction_id": txn["transaction_id"],
             "payout_id": None, "status": "pending", "available_at": now, "created_at": now,
             "applied": True, "entry_key": f"refund:{txn['transaction_id']}"}
    await db.ledger_entries.insert_one(entry)
    await bump(db, txn["seller_id"], pending_cents=entry["amount_cents"])
    await db.transactions.update_one({"_id": txn["_id"]}, {"$set": {
        "payment_status": "refunded", "refunded_at": now}})
    return entry


async def bump(db, seller_id, **inc) -> None:
    await db.seller_balances.update_one(
        {"_id": seller_id},
        {"$inc": {"pending_cents": 0, "available_cents": 0, "paid_out_cents": 0, **inc}},
        upsert=True)


async def give_available(db, seller_id, amount_cents: int) -> dict:
    """A matured sale worth exactly `amount_cents` to the seller, released to available."""
    old = utcnow() - money.REFUND_WINDOW - timedelta(days=1)
    model = await make_model(db, seller_id)
    txn = await make_sale(db, seller_id=seller_id, buyer_id=ObjectId(), model_id=model["_id"],
                          amount_cents=amount_cents, created_at=old)
    # make the line worth exactly amount_cents to keep payout arithmetic simple
    await db.ledger_entries.update_one({"transaction_id": txn["transaction_id"]},
                                       {"$set": {"amount_cents": amount_cents}})
    await bump(db, seller_id, pending_cents=amount_cents - txn["seller_amount_cents"])
    return txn


async def balance(db, seller_id) -> dict:
    return await money.get_balance(db, seller_id)


async def add_bank(api, token, **extra) -> dict:
    reply = await api("POST", "/api/users/me/payout-methods", token=token, json={
        "type": "bank_account", "bank_name": "First Bank", "account_holder_name": "Cre Ator",
        "account_number": "000123456789", **extra})
    assert reply.status == 201, reply.json
    return reply.json

