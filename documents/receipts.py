"""The buyer's receipt of one purchase (seed 004 "Purchase Success").

A receipt joins a transaction (`documents.purchases`), the order it belongs to
(`documents.orders`) and the model bought (`documents.catalog`), so it lives above them.
"""
from __future__ import annotations

from documents import catalog, orders, purchases
from documents.errors import NotFound


async def get_receipt(db, user: dict, transaction_id: str) -> dict:
    """`GET /api/purchases/{transaction_id}`: the buyer's transaction (`render_transaction`)
    with ``order_number``, ``purchase`` (its purchase while it is this transaction's, else
    None) and ``model`` (the model card, None when the model is gone). Raises NotFound
    TRANSACTION_NOT_FOUND for an unknown id and for anyone else's transaction."""
    txn = await purchases.transaction(db, transaction_id)
    if txn["buyer_id"] != user["_id"]:
        raise NotFound("Transaction not found", "TRANSACTION_NOT_FOUND")
    purchase = await purchases.purchase_of(db, user["_id"], txn["model_id"])
    model = await catalog.find_model(db, txn["model_id"])
    try:
        number = (await orders.get_order(db, txn["order_id"]))["number"]
    except NotFound:
        number = None
    out = purchases.render_transaction(txn)
    out["order_number"] = number
    out["purchase"] = purchases.render_purchase(purchase) if purchase and \
        purchase["transaction_id"] == txn["transaction_id"] else None
    out["model"] = (await catalog.render_models(db, [model], user))[0] if model else None
    return out
