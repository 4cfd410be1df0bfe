"""Refunds (staff, seed 000 §4; and charges refunded at the payment provider).

The provider refunds the line (idempotency key ``refund-<transaction_id>``), then the
conditional ``completed → refunded`` on the transaction admits one winner; the purchase is
revoked, the seller's sale reversed in the ledger, the model's `sales_count` given back, and
the order marked refunded once all its lines are. Those steps are idempotent and re-run by a
repeated request, so a crash between them is resumed. A refund reaches orders, purchases,
transactions, the ledger and the model's counter, so it lives above those modules
(docs/architecture.md §4).
"""
from __future__ import annotations

from pymongo import ReturnDocument

from documents import catalog, money, orders, purchases
from documents.common import utcnow
from documents.errors import Conflict
from documents.purchases import PURCHASES, TRANSACTIONS


async def refund_transaction(db, provider, transaction_id: str, staff: dict) -> dict:
    """`POST /api/transactions/{transaction_id}/refund` (seed 000 §4, admin only).

    Refunds the line's amount through the provider (none for a free line), marks the
    transaction refunded, revokes the purchase, reverses the seller's ledger line and marks
    the order refunded when all its lines are. Returns the rendered transaction. Raises
    NotFound TRANSACTION_NOT_FOUND, Conflict ALREADY_REFUNDED, PaymentFailed REFUND_FAILED,
    ProviderUnavailable.
    """
    txn = await purchases.transaction(db, transaction_id)
    if txn["payment_status"] == "refunded":
        await complete_refund(db, txn)
        raise Conflict("This transaction was refunded already", "ALREADY_REFUNDED")
    order = await orders.get_order(db, txn["order_id"])
    refund_id = None
    if txn["amount_cents"] > 0 and order.get("payment_intent_id"):
        refund = await provider.refund(order["payment_intent_id"], txn["amount_cents"],
                                       idempotency_key=f"refund-{transaction_id}")
        refund_id = refund.id
    won = await mark_refunded(db, txn, refund_id, staff["_id"])
    if won is None:
        raise Conflict("This transaction was refunded already", "ALREADY_REFUNDED")
    await complete_refund(db, won)
    return purchases.render_transaction(won)


async def mark_refunded(db, txn: dict, refund_id: str | None, by) -> dict | None:
    """The conditional ``completed → refunded`` of a transaction; None when it lost."""
    return await db[TRANSACTIONS].find_one_and_update(
        {"_id": txn["_id"], "payment_status": "completed"},
        {"$set": {"payment_status": "refunded", "refunded_at": utcnow(), "refund_id": refund_id,
                  "refunded_by": by}}, return_document=ReturnDocument.AFTER)


async def complete_refund(db, txn: dict) -> None:
    """The idempotent consequences of a refunded transaction (module docstring)."""
    await db[PURCHASES].update_one(
        {"user_id": txn["buyer_id"], "model_id": txn["model_id"],
         "transaction_id": txn["transaction_id"], "status": "active"},
        {"$set": {"status": "revoked", "revoked_at": utcnow()}})
    await money.record_refund(db, txn)
    await money.apply_counter(db, TRANSACTIONS, {"_id": txn["_id"]}, "uncounted",
                              catalog.COLLECTION, txn["model_id"],
                              f"refund:{txn['transaction_id']}", {"sales_count": -1})
    open_lines = await db[TRANSACTIONS].count_documents(
        {"order_id": txn["order_id"], "payment_status": {"$ne": "refunded"}})
    if open_lines == 0:
        await db[orders.ORDERS].update_one({"_id": txn["order_id"], "status": "paid"},
                                           {"$set": {"status": "refunded",
                                                     "refunded_at": utcnow()}})


async def on_charge_refunded(db, charge: dict) -> str:
    """`charge.refunded` webhook: a charge refunded in full at the provider (e.g. from its
    dashboard) refunds every line of its order still completed; a partial refund that we did
    not make cannot be mapped to lines and is only logged. Returns the outcome."""
    order = await db[orders.ORDERS].find_one({"payment_intent_id": charge.get("payment_intent")})
    if order is None:
        return "unknown_order"
    if not charge.get("refunded"):
        return "partial_refund_ignored"
    changed = 0
    async for txn in db[TRANSACTIONS].find({"order_id": order["_id"]}):
        won = await mark_refunded(db, txn, "external", None) \
            if txn["payment_status"] == "completed" else txn
        if won is not None:
            await complete_refund(db, won)
            changed += 1
    return f"refunded:{changed}"
