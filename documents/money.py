"""Money rules and the seller ledger writes (docs/architecture.md §3, §5).

Amounts are integer cents everywhere. The platform fee is 7.5 % of each line, rounded half up
to the cent, computed once and stored; the seller gets the rest. A coupon takes
`discount_percent` off each line (rounded half up per line), so an order's totals are the
sums of its lines and agree to the cent.

Ledger (collection `ledger_entries`, brief "Money")::

    {_id, seller_id, kind: "sale" | "refund" | "payout" | "payout_reversal",
     amount_cents (signed), transaction_id ("TXN-..." for sale/refund), payout_id,
     status: "pending" | "available", available_at, applied: bool, created_at,
     entry_key: "sale:<TXN>" | "refund:<TXN>" (unique, sparse: one sale and one refund per
     transaction; other kinds may set their own key such as "payout:<id>")}

A sale is pending for the refund window (14 days) and then available. `seller_balances`
``{_id: seller_id, pending_cents, available_cents, paid_out_cents, ops: [str]}`` is kept with
`$inc`. A ledger entry moves the balance EXACTLY ONCE even when a write is retried after a
crash: the `$inc` and a `$push` of the entry's op id to `ops` happen in one conditional update
(`ops: {$ne: op}`), the entry is then marked `applied`, and the op id is pulled again — so
`ops` only ever holds the few operations in flight. `inc_once` is that helper, also used for
other counters (`models.sales_count`, `coupons.used_count`).
"""
from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import uuid4

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from documents.common import utcnow

LEDGER = "ledger_entries"
BALANCES = "seller_balances"
FEE_RATE = Decimal("0.075")
REFUND_WINDOW = timedelta(days=14)  # the default hold of a sale (EARNINGS_HOLD_DAYS)
CLAIM_LEASE = timedelta(seconds=60)  # how long one caller of `apply_counter` holds a source


def hold_window(settings) -> timedelta:
    """How long a new sale stays pending: `settings.earnings_hold_days` (EARNINGS_HOLD_DAYS),
    REFUND_WINDOW when `settings` is None."""
    days = getattr(settings, "earnings_hold_days", None)
    return REFUND_WINDOW if days is None else timedelta(days=days)

INDEXES = {
    LEDGER: [
        IndexModel([("seller_id", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("entry_key", ASCENDING)], unique=True, sparse=True),
        IndexModel([("transaction_id", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("available_at", ASCENDING)]),
        IndexModel([("payout_id", ASCENDING)]),
    ],
}


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def platform_fee_cents(amount_cents: int) -> int:
    """7.5 % of `amount_cents`, rounded half up to the cent (docs/architecture.md §3): 1999 → 150, 1 → 0."""
    return _half_up(Decimal(int(amount_cents)) * FEE_RATE)


def split_line(amount_cents: int) -> tuple[int, int]:
    """(fee_cents, seller_cents) of one line; they always add up to `amount_cents`."""
    fee = platform_fee_cents(amount_cents)
    return fee, int(amount_cents) - fee


def discount_cents(price_cents: int, percent) -> int:
    """`percent` % of `price_cents`, rounded half up, never more than the price."""
    if not percent:
        return 0
    return min(int(price_cents), _half_up(Decimal(int(price_cents)) * Decimal(str(percent)) / 100))


def coupon_discounts(prices_cents: list[int], *, percent=0, amount_cents: int = 0) -> list[int]:
    """Per-line discounts in cents of a coupon on lines priced `prices_cents`.

    A percent coupon takes `percent` % of each line (`discount_cents`). A fixed coupon takes
    `amount_cents` off the order, capped at its subtotal, shared over the lines in proportion
    to their prices (largest remainder, ties to the earlier line), so the shares add up to the
    cent and no line goes below 0: ``[1000, 3000]`` with 500 → ``[125, 375]``.
    """
    if percent:
        return [discount_cents(price, percent) for price in prices_cents]
    subtotal = sum(int(p) for p in prices_cents)
    amount = min(int(amount_cents or 0), subtotal)
    if amount <= 0:
        return [0] * len(prices_cents)
    shares = [amount * int(p) // subtotal for p in prices_cents]
    left = amount - sum(shares)
    order = sorted(range(len(prices_cents)),
                   key=lambda i: (-(amount * int(prices_cents[i]) % subtotal), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def price_line(price_cents: int, percent=0, *, discount: int | None = None) -> dict:
    """One order line's money: ``{price_cents, discount_cents, amount_cents, fee_cents,
    seller_amount_cents}`` where amount = price - discount (what the buyer pays) and
    amount = fee + seller_amount. The discount is `percent` % of the price, or `discount`
    cents when given (a share of a fixed coupon, `coupon_discounts`)."""
    if discount is None:
        discount = discount_cents(price_cents, percent)
    discount = min(int(price_cents), int(discount))
    amount = int(price_cents) - discount
    fee, seller = split_line(amount)
    return {"price_cents": int(price_cents), "discount_cents": discount, "amount_cents": amount,
            "fee_cents": fee, "seller_amount_cents": seller}


def totals(lines: list[dict]) -> dict:
    """Order totals from priced lines: ``{subtotal_cents, discount_cents, total_cents,
    fee_cents}`` (subtotal = sum of prices; total = subtotal - discount)."""
    return {"subtotal_cents": sum(line["price_cents"] for line in lines),
            "discount_cents": sum(line["discount_cents"] for line in lines),
            "total_cents": sum(line["amount_cents"] for line in lines),
            "fee_cents": sum(line["fee_cents"] for line in lines)}


# --------------------------------------------------------------------------- exactly-once $inc

async def inc_once(collection, doc_id, op: str, inc: dict, *, upsert_defaults: dict | None = None
                   ) -> bool:
    """Apply `$inc` `inc` to document `doc_id` once for operation `op` (see module docstring).

    Returns True when this call applied it, False when `op` was already applied. With
    `upsert_defaults`, a missing document is first created with those fields.
    """
    if upsert_defaults is not None:
        try:
            await collection.update_one({"_id": doc_id},
                                        {"$setOnInsert": {**upsert_defaults, "ops": []}},
                                        upsert=True)
        except DuplicateKeyError:
            pass  # created by a concurrent call
    result = await collection.update_one({"_id": doc_id, "ops": {"$ne": op}},
                                         {"$inc": inc, "$push": {"ops": op}})
    return result.modified_count == 1


async def forget_op(collection, doc_id, op: str) -> None:
    """Drop `op` from the document's in-flight list once its source is marked applied."""
    await collection.update_one({"_id": doc_id}, {"$pull": {"ops": op}})


async def apply_counter(db, source: str, source_filter: dict, flag: str, target: str, doc_id,
                        op: str, inc: dict, upsert_defaults: dict | None = None) -> bool:
    """Move counter `inc` on `target`/`doc_id` exactly once for the source document
    (`source`/`source_filter`), whose boolean field `flag` records that it was applied.

    Concurrent callers (a webhook and a retried confirmation racing) are serialised by a
    lease on the source, field ``<flag>_claim`` (`CLAIM_LEASE`): only the holder moves the
    counter; the others return at once. A holder that crashed leaves its op in the target's
    `ops`, so whoever takes the expired lease cannot apply it twice; the op is pulled only
    once the flag is set. Returns True when this call applied the counter.
    """
    claim_field = f"{flag}_claim"
    now = utcnow()
    token = uuid4().hex
    claimed = await db[source].find_one_and_update(
        {**source_filter, flag: {"$ne": True},
         "$or": [{claim_field: None}, {f"{claim_field}.until": {"$lte": now}}]},
        {"$set": {claim_field: {"token": token, "until": now + CLAIM_LEASE}}},
        projection={"_id": 1})
    if claimed is None:
        if await db[source].find_one({**source_filter, flag: True}, {"_id": 1}) is not None:
            await forget_op(db[target], doc_id, op)  # a holder that stopped before this step
        return False
    applied = await inc_once(db[target], doc_id, op, inc, upsert_defaults=upsert_defaults)
    await db[source].update_one(source_filter, {"$set": {flag: True}, "$unset": {claim_field: ""}})
    await forget_op(db[target], doc_id, op)
    return applied


# --------------------------------------------------------------------------- ledger writes

BALANCE_DEFAULTS = {"pending_cents": 0, "available_cents": 0, "paid_out_cents": 0}


async def _apply_entry(db, entry: dict) -> None:
    field_name = "pending_cents" if entry["status"] == "pending" else "available_cents"
    await apply_counter(db, LEDGER, {"_id": entry["_id"]}, "applied", BALANCES,
                        entry["seller_id"], f"ledger:{entry['_id']}",
                        {field_name: entry["amount_cents"]}, BALANCE_DEFAULTS)


async def _upsert_entry(db, kind: str, transaction_id: str, fields_: dict) -> dict:
    key = {"entry_key": f"{kind}:{transaction_id}"}
    doc = {**key, "kind": kind, "transaction_id": transaction_id, **fields_, "applied": False}
    try:
        await db[LEDGER].update_one(key, {"$setOnInsert": doc}, upsert=True)
    except DuplicateKeyError:
        pass  # inserted by a concurrent call
    return await db[LEDGER].find_one(key)


async def record_sale(db, transaction: dict, hold: timedelta = REFUND_WINDOW) -> dict | None:
    """The seller's pending `sale` entry for a completed transaction (one per transaction),
    available after `hold` (`hold_window`), added to `seller_balances.pending_cents` exactly
    once. Returns the entry, or None for a
    line that earns the seller nothing (a free model)."""
    if transaction["seller_amount_cents"] <= 0:
        return None
    now = utcnow()
    entry = await _upsert_entry(
        db, "sale", transaction["transaction_id"],
        {"seller_id": transaction["seller_id"], "amount_cents": transaction["seller_amount_cents"],
         "payout_id": None, "status": "pending", "available_at": now + hold,
         "created_at": now})
    await _apply_entry(db, entry)
    return entry


async def record_refund(db, transaction: dict) -> dict | None:
    """Reverse the seller's sale of a refunded transaction: a negative `refund` entry with the
    sale's current status (and, while pending, its `available_at`, so both are released
    together), taken from `pending_cents` or `available_cents` exactly once.
    Returns the entry, or None when the sale earned nothing."""
    sale = await db[LEDGER].find_one({"entry_key": f"sale:{transaction['transaction_id']}"})
    if sale is None:
        return None
    now = utcnow()
    entry = await _upsert_entry(
        db, "refund", transaction["transaction_id"],
        {"seller_id": sale["seller_id"], "amount_cents": -sale["amount_cents"],
         "payout_id": None, "status": sale["status"],
         "available_at": sale["available_at"] if sale["status"] == "pending" else now,
         "created_at": now})
    await _apply_entry(db, entry)
    return entry


async def get_balance(db, seller_id) -> dict:
    """``{pending_cents, available_cents, paid_out_cents}`` of a seller (zeros when none)."""
    doc = await db[BALANCES].find_one({"_id": seller_id}) or {}
    return {k: int(doc.get(k, 0)) for k in BALANCE_DEFAULTS}
