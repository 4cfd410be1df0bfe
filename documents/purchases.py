"""Purchases, signed downloads and refunds (seed 000 §4, seed 004 "Purchase Success"
items 4–5).

`purchases` ``{_id, user_id, model_id (unique pair), order_id, transaction_id ("TXN-..."),
download_count, download_limit (10), status: "active" | "revoked", created_at, revoked_at}``
are written by `documents.orders` when an order is paid.

Downloads: each signed link handed out counts against `download_limit` with one conditional
`$inc` (``download_count < limit``), and the model's `downloads` counter moves with it. The
link itself is short-lived (`DOWNLOAD_URL_TTL_MINUTES`): S3 presigned, or HMAC-signed for
local storage.

`transactions` (one per order line: ``{transaction_id ("TXN-..."), order_id, buyer_id,
seller_id, model_id, amount_cents, platform_fee_cents, seller_amount_cents, payment_status:
"completed" | "refunded", ...}``) are written when an order is paid
(`documents.fulfilment`) and refunded (`documents.refunds`).
"""
from __future__ import annotations

import re

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents import catalog
from documents.common import paginate, render, utcnow
from documents.errors import Forbidden, NotFound

PURCHASES = "purchases"
TRANSACTIONS = "transactions"

INDEXES = {
    PURCHASES: [
        IndexModel([("user_id", ASCENDING), ("model_id", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("transaction_id", ASCENDING)]),
    ],
    TRANSACTIONS: [
        IndexModel([("transaction_id", ASCENDING)], unique=True),
        IndexModel([("order_id", ASCENDING)]),
        IndexModel([("buyer_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("seller_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("model_id", ASCENDING)]),
    ],
}

TRANSACTION_RE = re.compile(r"^TXN-\d{4}-\d{6,}$")
TRANSACTION_HIDDEN = ("counted", "uncounted", "counted_claim", "uncounted_claim")


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


async def has_buyers(db, model_id) -> bool:
    """True when somebody holds a purchase of `model_id` (an ObjectId)."""
    return await db[PURCHASES].find_one({"model_id": model_id}, {"_id": 1}) is not None


async def list_purchases(db, user: dict, *, page: int, limit: int,
                         link=None) -> tuple[list[dict], dict]:
    """The user's purchases, newest first, with model cards (seed 000 §4 `GET /api/purchases`).

    `link(model_id)`, when given, makes each active purchase's `download_url` (a link a
    browser can follow, `documents.downloads`; listing it counts nothing)."""
    docs, meta = await paginate(db[PURCHASES], {"user_id": user["_id"]}, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    models = list((await catalog.get_many(db, [d["model_id"] for d in docs])).values())
    cards = {m["_id"]: card for m, card in zip(models, await catalog.render_models(db, models, user),
                                              strict=True)}
    items = [render_purchase(d, cards.get(d["model_id"])) for d in docs]
    if link is not None:
        for doc, item in zip(docs, items, strict=True):
            usable = doc["status"] == "active" and doc["download_count"] < doc["download_limit"]
            item["download_url"] = link(doc["model_id"])["download_url"] if usable else None
    return items, meta


async def transaction(db, transaction_id: str) -> dict:
    """The transaction ``TXN-YYYY-NNNNNN``; raises NotFound TRANSACTION_NOT_FOUND."""
    txn = None
    if isinstance(transaction_id, str) and TRANSACTION_RE.match(transaction_id):
        txn = await db[TRANSACTIONS].find_one({"transaction_id": transaction_id})
    if txn is None:
        raise NotFound("Transaction not found", "TRANSACTION_NOT_FOUND")
    return txn


async def transactions_page(db, query: dict, *, page: int,
                            limit: int) -> tuple[list[dict], dict]:
    """One page of the transactions matching the MongoDB `query`, newest first, as stored:
    (documents, `paginate` meta)."""
    return await paginate(db[TRANSACTIONS], query, page=page, limit=limit,
                          sort=[("created_at", DESCENDING), ("_id", DESCENDING)])


async def sales_by_status(db, seller_id) -> dict:
    """A seller's transactions grouped by `payment_status` (cents): ``{status: {n, gross,
    fees, net}}`` summing `amount_cents`, `platform_fee_cents`, `seller_amount_cents`."""
    rows = await db[TRANSACTIONS].aggregate([
        {"$match": {"seller_id": seller_id}},
        {"$group": {"_id": "$payment_status", "n": {"$sum": 1},
                    "gross": {"$sum": "$amount_cents"}, "fees": {"$sum": "$platform_fee_cents"},
                    "net": {"$sum": "$seller_amount_cents"}}},
    ]).to_list(None)
    return {r["_id"]: r for r in rows}


async def purchase_of(db, user_id, model_id) -> dict | None:
    """`user_id`'s purchase of `model_id` whatever its status, or None."""
    return await db[PURCHASES].find_one({"user_id": user_id, "model_id": model_id})


# --------------------------------------------------------------------------- downloads

def filename(model: dict) -> str:
    """The file name a download is saved under: the title, slugged, with the file's extension."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", model.get("title") or "model").strip("-").lower()
    ext = (model.get("file_key") or "").rsplit(".", 1)[-1].lower() or "bin"
    return f"{stem or 'model'}.{ext}"


async def active_purchase(db, user: dict, model_id) -> dict | None:
    """`user`'s active purchase of `model_id`, or None."""
    return await db[PURCHASES].find_one({"user_id": user["_id"], "model_id": model_id,
                                         "status": "active"})


async def download_state(db, user: dict, *, model_id=None, transaction_id=None) -> dict:
    """What a download link of a bought model needs, counting nothing: ``{model_id,
    filename, file_format, file_size, download_count, download_limit, remaining_downloads}``.

    Raises what `claim_download` raises, DOWNLOAD_LIMIT_REACHED included when none is left.
    """
    purchase = await _purchase_for(db, user, model_id=model_id, transaction_id=transaction_id)
    if purchase["status"] != "active":
        raise Forbidden("This purchase was refunded", "PURCHASE_REVOKED")
    if purchase["download_count"] >= purchase["download_limit"]:
        raise Forbidden("You have reached the download limit for this model",
                        "DOWNLOAD_LIMIT_REACHED")
    model = await catalog.find_model(db, purchase["model_id"])
    if model is None or not model.get("file_key"):
        raise NotFound("The model's file is not available", "FILE_NOT_FOUND")
    return {"model_id": model["_id"], "filename": filename(model),
            "file_format": model.get("file_format"), "file_size": model.get("file_size"),
            "download_count": purchase["download_count"],
            "download_limit": purchase["download_limit"],
            "remaining_downloads": purchase["download_limit"] - purchase["download_count"]}


async def _purchase_for(db, user: dict, *, model_id=None, transaction_id=None) -> dict:
    if transaction_id is not None:
        txn = await transaction(db, transaction_id)
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
    model = await catalog.find_model(db, purchase["model_id"])
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
    await catalog.move_counter(db, model["_id"], "downloads", 1)
    return {"file_key": model["file_key"], "filename": filename(model),
            "file_format": model.get("file_format"), "file_size": model.get("file_size"),
            "download_count": counted["download_count"],
            "download_limit": counted["download_limit"],
            "remaining_downloads": counted["download_limit"] - counted["download_count"]}


async def owned_model_ids(db, user_id, model_ids: list) -> set:
    """The ids among `model_ids` that `user_id` has an active purchase of."""
    cursor = db[PURCHASES].find({"user_id": user_id, "model_id": {"$in": list(model_ids)},
                                 "status": "active"}, {"model_id": 1})
    return {doc["model_id"] async for doc in cursor}


async def top_sellers(db, since, limit: int) -> list[dict]:
    """Sellers by completed sales made since `since` (a UTC datetime; all time when None),
    most sales first, then most gross: ``[{_id: seller id, n: sales, amount: gross cents}]``,
    at most `limit`."""
    match: dict = {"payment_status": "completed"}
    if since:
        match["created_at"] = {"$gte": since}
    return await db[TRANSACTIONS].aggregate([
        {"$match": match},
        {"$group": {"_id": "$seller_id", "n": {"$sum": 1}, "amount": {"$sum": "$amount_cents"}}},
        {"$sort": {"n": -1, "amount": -1}}, {"$limit": limit},
    ]).to_list(None)
