"""Purchases, signed downloads and refunds (seed 000 §4, seed 004 "Purchase Success"; issue 5
items 4–5).

`purchases` ``{_id, user_id, model_id (unique pair), order_id, transaction_id ("TXN-..."),
download_count, download_limit (10), status: "active" | "revoked", created_at, revoked_at}``
are written by `documents.orders` when an order is paid.

Downloads: each signed link handed out counts against `download_limit` with one conditional
`$inc` (``download_count < limit``), and the model's `downloads` counter moves with it. The
link itself is short-lived (`DOWNLOAD_URL_TTL_MINUTES`): S3 presigned, or HMAC-signed for
local storage.

Refunds (staff): the provider refunds the line (idempotency key ``refund-<transaction_id>``),
then the conditional ``completed → refunded`` on the transaction admits one winner; the
purchase is revoked, the seller's sale reversed in the ledger, the model's `sales_count`
given back, and the order marked refunded once all its lines are. Those steps are idempotent
and re-run by a repeated request, so a crash between them is resumed.
"""
from __future__ import annotations

import re

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents import catalog, money, orders
from documents.common import paginate, render, utcnow
from documents.errors import Conflict, Forbidden, NotFound

PURCHASES = "purchases"
TRANSACTIONS = orders.TRANSACTIONS

INDEXES = {
    PURCHASES: [
        IndexModel([("user_id", ASCENDING), ("model_id", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("transaction_id", ASCENDING)]),
    ],
}

TRANSACTION_RE = re.compile(r"^TXN-\d{4}-\d{6,}$")
TRANSACTION_HIDDEN = ("counted", "uncounted")


def render_transaction(txn: dict) -> dict:
    """A transaction in API form (seed 000 §4 `Transaction`): amount, platform_fee,
    seller_amount, discount as decimals; ids as strings."""
    return render({k: v for k, v in txn.items() if k not in TRANSACTION_HIDDEN})


def render_purchase(purchase: dict, model_card: dict | None = None) -> dict:
    """``{id, model_id, transaction_id, order_id, download_count, download_limit,
    remaining_downloads, status, created_at, model}``."""
    out = render(purchase)
    out["remaining_downloads"] = max(0, purchase["download_limit"] - purchase["download_count"])
    out["model"] = model_card
    return out


async def list_purchases(db, user: dict, *, page: int, limit: int) -> tuple[list[dict], dict]:
    """The user's purchases, newest first, with model cards (seed 000 §4 `GET /api/purchases`)."""
    docs, meta = await paginate(db[PURCHASES], {"user_id": user["_id"]}, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    models = await db[catalog.COLLECTION].find(
        {"_id": {"$in": [d["model_id"] for d in docs]}}).to_list(length=limit)
    cards = {m["_id"]: card for m, card in zip(models, await catalog.render_models(db, models, user),
                                              strict=True)}
    return [render_purchase(d, cards.get(d["model_id"])) for d in docs], meta


async def _transaction(db, transaction_id: str) -> dict:
    txn = None
    if isinstance(transaction_id, str) and TRANSACTION_RE.match(transaction_id):
        txn = await db[TRANSACTIONS].find_one({"transaction_id": transaction_id})
    if txn is None:
        raise NotFound("Transaction not found", "TRANSACTION_NOT_FOUND")
    return txn


async def get_purchase(db, user: dict, transaction_id: str) -> dict:
    """`GET /api/purchases/{transaction_id}` (seed 004 "Purchase Success"): the buyer's
    transaction with its purchase, model card and order number. NotFound for anyone else's."""
    txn = await _transaction(db, transaction_id)
    if txn["buyer_id"] != user["_id"]:
        raise NotFound("Transaction not found", "TRANSACTION_NOT_FOUND")
    purchase = await db[PURCHASES].find_one({"user_id": user["_id"], "model_id": txn["model_id"]})
    model = await db[catalog.COLLECTION].find_one({"_id": txn["model_id"]})
    card = (await catalog.render_models(db, [model], user))[0] if model else None
    order = await db[orders.ORDERS].find_one({"_id": txn["order_id"]}, {"number": 1})
    out = render_transaction(txn)
    out["order_number"] = order["number"] if order else None
    out["purchase"] = render_purchase(purchase) if purchase and \
        purchase["transaction_id"] == txn["transaction_id"] else None
    out["model"] = card
    return out


# --------------------------------------------------------------------------- downloads

def _filename(model: dict) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", model.get("title") or "model").strip("-").lower()
    ext = (model.get("file_key") or "").rsplit(".", 1)[-1].lower() or "bin"
    return f"{stem or 'model'}.{ext}"


async def _purchase_for(db, user: dict, *, model_id=None, transaction_id=None) -> dict:
    if transaction_id is not None:
        txn = await _transaction(db, transaction_id)
        if txn["buyer_id"] != user["_id"]:
            raise NotFound("Transaction not found", "TRANSACTION_NOT_FOUND")
        purchase = await db[PURCHASES].find_one({"user_id": user["_id"],
                                                 "model_id": txn["model_id"]})
        if purchase is None or purchase["transaction_id"] != transaction_id:
            raise Forbidden("This purchase was refunded", "PURCHASE_REVOKED")
        return purchase
    model = await catalog.get_model(db, model_id)
    purchase = await db[PURCHASES].find_one({"user_id": user["_id"], "model_id": model["_id"]})
    if purchase is None:
        raise Forbidden("You have not bought this model", "NOT_PURCHASED")
    return purchase


async def claim_download(db, user: dict, *, model_id=None, transaction_id=None) -> dict:
    """Count one download of a bought model against its purchase's download limit.

    Returns ``{file_key, filename, file_format, file_size, download_count, download_limit,
    remaining_downloads}``; the caller turns `file_key` into a short-lived signed URL.
    Raises NotFound (unknown model or transaction, file missing), Forbidden NOT_PURCHASED /
    PURCHASE_REVOKED / DOWNLOAD_LIMIT_REACHED (seed 000 `Purchase.download_limit`).
    """
    purchase = await _purchase_for(db, user, model_id=model_id, transaction_id=transaction_id)
    if purchase["status"] != "active":
        raise Forbidden("This purchase was refunded", "PURCHASE_REVOKED")
    model = await db[catalog.COLLECTION].find_one({"_id": purchase["model_id"]})
    if model is None or not model.get("file_key"):
        raise NotFound("The model's file is not available", "FILE_NOT_FOUND")
    counted = await db[PURCHASES].find_one_and_update(
        {"_id": purchase["_id"], "status": "active", "download_limit": purchase["download_limit"],
         "download_count": {"$lt": purchase["download_limit"]}},
        {"$inc": {"download_count": 1}, "$set": {"last_download_at": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if counted is None:
        current = await db[PURCHASES].find_one({"_id": purchase["_id"]})
        if current is None or current["status"] != "active":
            raise Forbidden("This purchase was refunded", "PURCHASE_REVOKED")
        raise Forbidden("You have reached the download limit for this model",
                        "DOWNLOAD_LIMIT_REACHED")
    await db[catalog.COLLECTION].update_one({"_id": model["_id"]}, {"$inc": {"downloads": 1}})
    return {"file_key": model["file_key"], "filename": _filename(model),
            "file_format": model.get("file_format"), "file_size": model.get("file_size"),
            "download_count": counted["download_count"],
            "download_limit": counted["download_limit"],
            "remaining_downloads": counted["download_limit"] - counted["download_count"]}


# --------------------------------------------------------------------------- refunds

async def refund_transaction(db, provider, transaction_id: str, staff: dict) -> dict:
    """`POST /api/transactions/{transaction_id}/refund` (seed 000 §4, admin only).

    Refunds the line's amount through the provider (none for a free line), marks the
    transaction refunded, revokes the purchase, reverses the seller's ledger line and marks
    the order refunded when all its lines are. Returns the rendered transaction. Raises
    NotFound TRANSACTION_NOT_FOUND, Conflict ALREADY_REFUNDED, PaymentFailed REFUND_FAILED,
    ProviderUnavailable.
    """
    txn = await _transaction(db, transaction_id)
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
    return render_transaction(won)


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



# --------------------------------------------------------------------------- webhooks

PAYMENT_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed",
                  "payment_intent.requires_action", "payment_intent.canceled")


async def handle_stripe_event(db, hub, mailer, provider, event: dict) -> str:
    """Process one verified webhook event, deduplicated by its id (`webhook_events`): the
    PaymentIntent events settle the order through the same transition as checkout, and
    `charge.refunded` refunds a charge refunded at the provider. Unknown types are ignored.
    Returns the outcome ("duplicate", "ignored", "paid", "failed", ...)."""
    if not await orders.record_event(db, event):
        return "duplicate"
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        outcome = "malformed"
    elif event["type"] in PAYMENT_EVENTS and isinstance(obj.get("id"), str):
        outcome = await orders.on_payment_event(db, hub, mailer, provider, obj["id"])
    elif event["type"] == "charge.refunded":
        outcome = await on_charge_refunded(db, obj)
    else:
        outcome = "ignored"
    await orders.finish_event(db, event, outcome)
    return outcome
