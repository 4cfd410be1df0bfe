"""Creator earnings: ledger reads and the balance rules (docs/architecture.md §3, §5;
seed 001 §7 "Financials").

The ledger (`ledger_entries`) and the balances (`seller_balances`) are written by
`documents.money` (sale and refund lines, from checkout and refunds) and `documents.payouts`
(payout and payout_reversal lines). This module owns the one move between the two buckets:

- A `sale` line is `pending` until its `available_at` (created_at + the refund window, EARNINGS_HOLD_DAYS),
  then `release_matured` makes it `available`: per line a conditional `find_one_and_update`
  (``status: "pending", available_at <= now``) admits one winner, and the winner moves the
  amount ``pending_cents -= x, available_cents += x`` with `money.apply_counter` (op
  ``release:<entry id>``, flag `release_applied` on the line), so the move happens exactly
  once even when two releases race or a release is re-driven after a crash.
- A pending `refund` line (negative, written while its sale was pending) matures together
  with its sale: it is released once the sale line is `available`. That keeps both buckets
  right whichever order a refund and a release happen in.
- The periodic job releases every seller's matured lines (`release_all`); each released sale
  line is announced once ("funds available"): `claim_funds_notices` claims the lines whose
  `funds_notified` is False, whichever path released them.
- Lines whose balance write is not done yet (`applied: False`, see `documents.money`) are
  never released; lines claimed but not moved (a crash) are re-driven after RECOVER_AFTER.

Balances are shown as ``{pending, available, paid_out, in_payout, lifetime_earnings}``
(decimals): lifetime_earnings = net sales (sale + refund lines) = pending + available +
in_payout (payouts requested or approved, not yet paid) + paid_out.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from bson import ObjectId
from pymongo import DESCENDING

from documents import catalog, money, purchases, users
from documents.common import paginate, render, utcnow

LEDGER = money.LEDGER
BALANCES = money.BALANCES
PAYOUTS = "payouts"
LEDGER_KINDS = ("sale", "refund", "payout", "payout_reversal")
OPEN_PAYOUT = ("requested", "approved")
RECOVER_AFTER = timedelta(minutes=5)
RELEASE_BATCH = 500

INDEXES: dict = {}  # ledger and balance indexes are declared by documents.money


# --------------------------------------------------------------------------- release

async def _move(db, entry: dict) -> None:
    amount = int(entry["amount_cents"])
    await money.apply_counter(
        db, LEDGER, {"_id": entry["_id"]}, "release_applied", BALANCES, entry["seller_id"],
        f"release:{entry['_id']}", {"pending_cents": -amount, "available_cents": amount},
        money.BALANCE_DEFAULTS)


async def _claim(db, entry_id, now: datetime) -> dict | None:
    return await db[LEDGER].find_one_and_update(
        {"_id": entry_id, "status": "pending", "available_at": {"$lte": now}},
        {"$set": {"status": "available", "released_at": now, "release_applied": False,
                  "funds_notified": False}},
        return_document=True)


async def _matured_ids(db, seller_id, now: datetime) -> list:
    query = {"seller_id": seller_id, "kind": "sale", "status": "pending",
             "available_at": {"$lte": now}, "applied": {"$ne": False}}
    docs = await db[LEDGER].find(query, {"_id": 1}).to_list(RELEASE_BATCH)
    return [d["_id"] for d in docs]


async def _refund_ids(db, seller_id) -> list:
    """Pending refund lines whose sale line is already available."""
    refunds = await db[LEDGER].find(
        {"seller_id": seller_id, "kind": "refund", "status": "pending",
         "applied": {"$ne": False}}, {"_id": 1, "transaction_id": 1}).to_list(RELEASE_BATCH)
    if not refunds:
        return []
    released = await db[LEDGER].find(
        {"kind": "sale", "status": "available",
         "transaction_id": {"$in": [r["transaction_id"] for r in refunds]}},
        {"transaction_id": 1}).to_list(RELEASE_BATCH)
    done = {s["transaction_id"] for s in released}
    return [r["_id"] for r in refunds if r["transaction_id"] in done]


async def _recover(db, seller_id, now: datetime) -> None:
    stuck = await db[LEDGER].find(
        {"seller_id": seller_id, "release_applied": False,
         "released_at": {"$lte": now - RECOVER_AFTER}}).to_list(RELEASE_BATCH)
    for entry in stuck:
        await _move(db, entry)


async def release_matured(db, seller_id, now: datetime | None = None) -> int:
    """Make the seller's matured pending lines available, each exactly once.

    `seller_id` is an ObjectId; `now` (default: the clock) is when the window is judged.
    Returns the cents moved from pending to available by THIS call (0 when another call
    already did it). Safe to call concurrently and repeatedly.
    """
    now = now or utcnow()
    await _recover(db, seller_id, now)
    moved = 0
    for find_ids in (lambda: _matured_ids(db, seller_id, now), lambda: _refund_ids(db, seller_id)):
        for entry_id in await find_ids():   # refunds after sales: a sale released here frees its refund
            entry = await _claim(db, entry_id, now)
            if entry is not None:
                await _move(db, entry)
                moved += int(entry["amount_cents"])
    return moved


async def release_all(db, now: datetime | None = None) -> int:
    """Release the matured lines of every seller who has some (the periodic job); returns
    the cents moved by this call."""
    now = now or utcnow()
    sellers = await db[LEDGER].distinct("seller_id", {
        "status": "pending", "available_at": {"$lte": now}, "kind": "sale"})
    stuck = await db[LEDGER].distinct("seller_id", {"release_applied": False})
    moved = 0
    for seller_id in {*sellers, *stuck}:
        moved += await release_matured(db, seller_id, now)
    return moved


async def claim_funds_notices(db, limit: int = RELEASE_BATCH) -> list[tuple]:
    """Released sale lines not yet announced, claimed once (flag `funds_notified`):
    ``[(seller_id, cents), ...]`` summed per seller, for the "funds available" notice. A line
    is announced only once its amount is in the seller's available balance
    (`release_applied`), so the notice never runs ahead of the balance it announces."""
    token = ObjectId()
    lines = await db[LEDGER].find({"kind": "sale", "status": "available", "release_applied": True,
                                   "funds_notified": False}, {"_id": 1}).to_list(limit)
    if not lines:
        return []
    await db[LEDGER].update_many({"_id": {"$in": [d["_id"] for d in lines]},
                                  "funds_notified": False}, {"$set": {"funds_notified": token}})
    won = await db[LEDGER].find({"funds_notified": token},
                                {"seller_id": 1, "amount_cents": 1}).to_list(limit)
    totals: dict = {}
    for line in won:
        totals[line["seller_id"]] = totals.get(line["seller_id"], 0) + int(line["amount_cents"])
    return list(totals.items())


# --------------------------------------------------------------------------- balances

async def _sum(db, collection: str, match: dict, field: str) -> int:
    rows = await db[collection].aggregate([
        {"$match": match}, {"$group": {"_id": None, "total": {"$sum": f"${field}"}}},
    ]).to_list(1)
    return int(rows[0]["total"]) if rows else 0


async def balance_cents(db, seller_id, *, release: bool = True) -> dict:
    """The seller's balance in cents: ``{pending_cents, available_cents, paid_out_cents,
    in_payout_cents, lifetime_earnings_cents}`` after releasing matured lines (unless
    `release` is False)."""
    if release:
        await release_matured(db, seller_id)
    stored = await money.get_balance(db, seller_id)
    lifetime = await _sum(db, LEDGER, {"seller_id": seller_id,
                                       "kind": {"$in": ["sale", "refund"]}}, "amount_cents")
    in_payout = await _sum(db, PAYOUTS, {"seller_id": seller_id,
                                         "status": {"$in": list(OPEN_PAYOUT)}}, "amount_cents")
    return {**stored, "in_payout_cents": in_payout, "lifetime_earnings_cents": lifetime}


PENDING_LINES = 50


async def pending_lines(db, seller_id) -> list[dict]:
    """The seller's pending sale lines (net of their pending refunds), soonest available
    first, at most PENDING_LINES: ``[{transaction_id, amount, available_at, created_at}]``."""
    docs = await db[LEDGER].find(
        {"seller_id": seller_id, "status": "pending", "kind": {"$in": ["sale", "refund"]}},
        {"transaction_id": 1, "amount_cents": 1, "available_at": 1, "created_at": 1, "kind": 1},
    ).sort([("available_at", 1), ("_id", 1)]).to_list(PENDING_LINES * 2)
    lines: dict[str, dict] = {}
    for doc in docs:
        line = lines.setdefault(doc["transaction_id"], {
            "transaction_id": doc["transaction_id"], "amount_cents": 0,
            "available_at": doc["available_at"], "created_at": doc["created_at"]})
        line["amount_cents"] += int(doc["amount_cents"])
    return [render(line) for line in lines.values() if line["amount_cents"] > 0][:PENDING_LINES]


async def balance(db, seller_id, settings=None) -> dict:
    """The seller's balance in API form (decimals; brief "Money")::

        {pending, available, paid_out, in_payout, lifetime_earnings, currency,
         hold_days, next_available_at, pending_lines: [{transaction_id, amount,
         available_at, created_at}]}

    Matured lines are released first, judged by their dates (`release_matured`), so the
    figures are right whether or not a periodic release ran; `pending_lines` tells when each
    pending amount becomes available (`hold_days` after its sale: EARNINGS_HOLD_DAYS of
    `settings`)."""
    figures = render(await balance_cents(db, seller_id))
    lines = await pending_lines(db, seller_id)
    return {**figures, "currency": "usd", "hold_days": money.hold_window(settings).days,
            "next_available_at": lines[0]["available_at"] if lines else None,
            "pending_lines": lines}


# --------------------------------------------------------------------------- reads

def render_entry(entry: dict) -> dict:
    """A ledger line in API form: ``{id, kind, amount (signed decimal), status, transaction_id,
    payout_id, available_at, created_at}``."""
    keep = ("_id", "kind", "amount_cents", "status", "transaction_id", "payout_id",
            "available_at", "created_at")
    return render({k: entry.get(k) for k in keep})


async def ledger_page(db, seller_id, *, page: int, limit: int,
                      kind: str | None = None) -> tuple[list[dict], dict]:
    """One page of the seller's ledger lines, newest first (optionally one `kind`)."""
    query: dict = {"seller_id": seller_id}
    if kind:
        query["kind"] = kind
    docs, meta = await paginate(db[LEDGER], query, page=page, limit=limit,
                                sort=[("created_at", DESCENDING), ("_id", DESCENDING)])
    return [render_entry(d) for d in docs], meta


def transactions_query(user_id, role: str = "all", status: str | None = None) -> dict:
    """The `transactions` filter for a user's own transactions: as seller (`role="sales"`),
    as buyer (`"purchases"`) or both (`"all"`), optionally one `payment_status`."""
    sides = {"sales": [{"seller_id": user_id}], "purchases": [{"buyer_id": user_id}],
             "all": [{"seller_id": user_id}, {"buyer_id": user_id}]}[role]
    query: dict = sides[0] if len(sides) == 1 else {"$or": sides}
    if status:
        query = {**query, "payment_status": status}
    return query


async def _titles(db, model_ids) -> dict:
    return await catalog.get_many(db, list(set(model_ids)))


def render_transaction(txn: dict, user_id, models: dict) -> dict:
    """A transaction as its buyer or seller sees it: seed 000 `Transaction` (decimals) plus
    `direction` ("sale" | "purchase"), `model_title`, `model_thumbnail`."""
    out = render({k: v for k, v in txn.items()
                  if k not in ("counted", "uncounted", "counted_claim", "uncounted_claim")})
    out["direction"] = "sale" if txn.get("seller_id") == user_id else "purchase"
    model = models.get(txn.get("model_id")) or {}
    out["model_title"] = model.get("title")
    out["model_thumbnail"] = model.get("thumbnail_url")
    if out["direction"] == "purchase":
        out.pop("seller_amount", None)
        out.pop("platform_fee", None)
    return out


async def transactions_page(db, user_id, *, page: int, limit: int, role: str = "all",
                            status: str | None = None) -> tuple[list[dict], dict]:
    """One page of the user's transactions, newest first (see `transactions_query`)."""
    docs, meta = await purchases.transactions_page(db, transactions_query(user_id, role, status),
                                                   page=page, limit=limit)
    models = await _titles(db, [d.get("model_id") for d in docs])
    return [render_transaction(d, user_id, models) for d in docs], meta


async def sales_totals(db, seller_id) -> dict:
    """Lifetime sales of a seller from `transactions` (cents): ``{sales_count, refunds_count,
    gross_cents, fees_cents, net_cents, refunded_cents}``; gross/fees/net count completed
    (not refunded) sales only."""
    by = await purchases.sales_by_status(db, seller_id)
    done, refunded = by.get("completed", {}), by.get("refunded", {})
    return {"sales_count": int(done.get("n", 0)), "refunds_count": int(refunded.get("n", 0)),
            "gross_cents": int(done.get("gross", 0)), "fees_cents": int(done.get("fees", 0)),
            "net_cents": int(done.get("net", 0)),
            "refunded_cents": int(refunded.get("gross", 0))}



async def all_transactions_page(db, *, page: int, limit: int, status: str | None = None,
                                seller_id=None, buyer_id=None, model_id=None,
                                search: str | None = None) -> tuple[list[dict], dict]:
    """Every transaction for staff (seed 000 §7 `GET /api/admin/transactions`), newest first,
    filtered by `status`, seller, buyer, model or a `TXN-` prefix; each with `buyer`,
    `seller` brief cards and `model_title`."""
    query: dict = {}
    for name, value in (("payment_status", status), ("seller_id", seller_id),
                        ("buyer_id", buyer_id), ("model_id", model_id)):
        if value is not None:
            query[name] = value
    if search:
        query["transaction_id"] = {"$regex": "^" + re.escape(search.strip().upper())}
    docs, meta = await purchases.transactions_page(db, query, page=page, limit=limit)
    people = await users.get_many(db, [d.get("buyer_id") for d in docs]
                                  + [d.get("seller_id") for d in docs])
    models = await _titles(db, [d.get("model_id") for d in docs])
    items = []
    for doc in docs:
        out = render({k: v for k, v in doc.items() if k not in ("counted", "uncounted")})
        out["buyer"] = users.render_brief(people.get(doc.get("buyer_id")))
        out["seller"] = users.render_brief(people.get(doc.get("seller_id")))
        out["model_title"] = (models.get(doc.get("model_id")) or {}).get("title")
        items.append(out)
    return items, meta
